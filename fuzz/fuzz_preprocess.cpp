// libFuzzer harness: load_image_memory (decode, central crop, resize by
// preset) to a small target size, with libjpeg for JPEG (as the CLI builds).
// Input: three option bytes, then the image file.
//   byte 0  bits 0-1 preset (tf, tf-antialias, keras, fast), bit 2 crop 0.875,
//           bit 3 a crop of 0.1 (the smallest crops round to one pixel)
//   byte 1  target height 1..64, byte 2 target width 1..64
#include "featx/image/preprocess.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return featx_fuzz::guarded([&] {
    featx_fuzz::Bytes in{data, size};
    const uint8_t opt = in.take();
    featx::PreprocessOptions po;
    const featx::Preset presets[] = {featx::Preset::tf, featx::Preset::tf_antialias, featx::Preset::keras,
                                     featx::Preset::fast};
    po.preset = presets[opt & 3];
    po.central_crop = (opt & 8) ? 0.1 : (opt & 4) ? 0.875 : 1.0;
    po.height = 1 + in.take() % 64;
    po.width = 1 + in.take() % 64;
    featx::Image img;
    if (!featx_fuzz::check(featx::load_image_memory(in.data, in.size, "fuzz.img", po, &img), "load_image_memory"))
      return;
    if (img.height != po.height || img.width != po.width || img.rgb.size() != size_t(po.height) * size_t(po.width) * 3)
      featx_fuzz::fail("load_image_memory", "success with an image not of the target size");
    // The resize weights sum to 1 in float, so a sample may pass 1 by an ulp or two.
    for (float v : img.rgb)
      if (!(v >= -1e-6f && v <= 1.0f + 1e-6f))
        featx_fuzz::fail("load_image_memory", "a sample outside [0, 1]: " + std::to_string(v));
  });
}
