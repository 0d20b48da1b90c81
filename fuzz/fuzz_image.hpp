// fuzz/fuzz_image.hpp: the body of the image_stb and image_jpeg harnesses.
// Which JPEG decoder runs is the including file's choice (FEATX_WITH_LIBJPEG
// defined or not before this header).
//
// Input: one option byte, then the image file.
//   bit 0      DecodeStyle: tensorflow or keras
//   bits 1-2   jpeg_scale_denom 1, 2, 4 or 8 (libjpeg only; stb ignores it)
#pragma once

#include "featx/image/decode.hpp"
#include "fuzz_common.hpp"

namespace featx_fuzz {

inline int fuzz_image(const uint8_t* data, size_t size) {
  return guarded([&] {
    Bytes in{data, size};
    const uint8_t opt = in.take();
    featx::DecodeOptions options;
    options.style = (opt & 1) ? featx::DecodeStyle::keras : featx::DecodeStyle::tensorflow;
    options.jpeg_scale_denom = 1 << ((opt >> 1) & 3);
    featx::Image img;
    if (!check(featx::decode_image_memory(in.data, in.size, "fuzz.img", options, &img), "decode_image_memory"))
      return;
    if (img.height < 1 || img.width < 1 || img.rgb.size() != size_t(img.height) * size_t(img.width) * 3)
      fail("decode_image_memory", "success with an inconsistent image");
    for (float v : img.rgb)
      if (!(v >= 0.0f && v <= 1.0f)) fail("decode_image_memory", "a sample outside [0, 1]");
  });
}

}  // namespace featx_fuzz
