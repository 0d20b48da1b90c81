// featx/image/preprocess.hpp: file -> network input, by preset.
//
//   tf (default)  tf.io.decode_image + convert_image_dtype (libjpeg JDCT_IFAST
//                 for JPEG), optional tf.image.central_crop, tf.image.resize
//                 (bilinear, half-pixel centres, no antialias);
//   tf-antialias  the same with tf.image.resize(antialias=True);
//   keras         keras.utils.load_img(path, target_size=(h, w)): PIL decode
//                 (JDCT_ISLOW), PIL resize NEAREST, then x / 255 in float32;
//                 a central crop, if asked for, comes before the resize;
//   fast          like tf, but a large JPEG is decoded at 1/2, 1/4 or 1/8
//                 scale in the DCT (libjpeg), the largest that leaves both
//                 sides of the (cropped) image at least twice the target;
//                 tf.io.decode_jpeg(ratio=r) decodes the same pixels. Not TF's
//                 default numbers: faster on big photos, never the default.
// Other formats than JPEG decode the same under every preset (they are
// lossless); only the resize and the keras division differ.
#pragma once

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "featx/file.hpp"
#include "featx/image/central_crop.hpp"
#include "featx/image/core.hpp"
#include "featx/image/decode.hpp"
#include "featx/image/pixel_view.hpp"
#include "featx/image/resize_antialias.hpp"
#include "featx/image/resize_bilinear.hpp"
#include "featx/image/resize_nearest_pil.hpp"
#include "featx/status.hpp"

namespace featx {

enum class Preset { tf, tf_antialias, keras, fast };

inline const char* preset_name(Preset p) {
  switch (p) {
    case Preset::tf_antialias:
      return "tf-antialias";
    case Preset::keras:
      return "keras";
    case Preset::fast:
      return "fast";
    case Preset::tf:
      break;
  }
  return "tf";
}

// "tf", "tf-antialias", "keras" or "fast".
inline Status parse_preset(const std::string& text, Preset* out) {
  for (Preset p : {Preset::tf, Preset::tf_antialias, Preset::keras, Preset::fast})
    if (text == preset_name(p)) {
      *out = p;
      return Status::Ok();
    }
  return invalid_argument("unknown preprocessing preset '" + printable(text) + "' (tf, tf-antialias, keras, fast)");
}

struct PreprocessOptions {
  int height = 224, width = 224;  // network input size
  // tf.image.central_crop fraction applied before resizing; 1 = no crop.
  // (Some TF-slim evaluation pipelines use 0.875.) double: see central_crop.
  double central_crop = 1.0;
  Preset preset = Preset::tf;
  // The decoded image's limits, checked on its header (core.hpp).
  ImageLimits limits;
};

namespace image_detail {

inline Status check_options(const std::string& name, const PreprocessOptions& opt) {
  if (opt.height < 1 || opt.width < 1 || opt.height > FEATX_MAX_IMAGE_SIDE ||
      opt.width > FEATX_MAX_IMAGE_SIDE)
    return invalid_argument(name + ": bad target size " + std::to_string(opt.height) + "x" +
                            std::to_string(opt.width));
  if (!(opt.central_crop > 0.0 && opt.central_crop <= 1.0))
    return invalid_argument(name + ": central crop fraction " + std::to_string(opt.central_crop) +
                            " is outside (0, 1]");
  return Status::Ok();
}

// Crop (a window) and resize as the preset says.
template <typename T>
inline void prepare(const RgbView<T>& decoded, const PreprocessOptions& opt, const char* decoder, int warnings,
                    Image* out) {
  const RgbView<T> in = crop_view(decoded, opt.central_crop);
  std::vector<float> rgb;
  switch (opt.preset) {
    case Preset::tf_antialias:
      resize_antialias_view(in, opt.height, opt.width, &rgb);
      break;
    case Preset::keras:
      resize_nearest_pil_view(in, opt.height, opt.width, &rgb);
      break;
    case Preset::tf:
    case Preset::fast:
      resize_bilinear_view(in, opt.height, opt.width, &rgb);
      break;
  }
  set_image(out, opt.height, opt.width, std::move(rgb), decoder, warnings);
}

}  // namespace image_detail

// The fast preset's JPEG scale: the largest denominator d in 8, 4, 2 for
// which the decoded size (ceil(side / d), libjpeg's rounding) still holds at
// least 2 * target pixels per side after the central crop; 1 otherwise.
inline int fast_jpeg_scale_denom(int image_h, int image_w, const PreprocessOptions& opt) {
  auto cropped = [&](int side) {
    return opt.central_crop < 1.0 ? side - 2 * image_detail::crop_start(side, opt.central_crop) : side;
  };
  for (int d : {8, 4, 2}) {
    const int h = (image_h + d - 1) / d, w = (image_w + d - 1) / d;
    if (cropped(h) >= 2 * opt.height && cropped(w) >= 2 * opt.width) return d;
  }
  return 1;
}

// Decodes an image held in memory and prepares it by opt.preset.
inline Status load_image_memory(const uint8_t* data, size_t size, const std::string& name,
                                const PreprocessOptions& opt, Image* out) {
  image_detail::clear(out);
  FEATX_RETURN_IF_ERROR(image_detail::check_options(name, opt));
  if (data == nullptr && size != 0) return invalid_argument(name + ": null data pointer");
  if (size == 0) return corrupt(name + ": empty file");
  DecodeOptions decode;
  decode.style = opt.preset == Preset::keras ? DecodeStyle::keras : DecodeStyle::tensorflow;
  decode.limits = opt.limits;
#ifdef FEATX_WITH_LIBJPEG
  if (opt.preset == Preset::fast && image_detail::is_jpeg(data, size)) {
    int h = 0, w = 0;
    FEATX_RETURN_IF_ERROR(read_jpeg_size(data, size, name, &w, &h, opt.limits));
    decode.jpeg_scale_denom = fast_jpeg_scale_denom(h, w, opt);
  }
#endif
  // 8-bit samples stay 8-bit until the resize reads them (pixel_view.hpp).
  image_detail::Pixels8 px;
  Image flt;
  FEATX_RETURN_IF_ERROR(image_detail::decode_samples(data, size, name, decode, &px, &flt));
  if (px.data() != nullptr) {
    const image_detail::RgbView<uint8_t> view{px.data(), px.height(), px.width(), size_t(px.width()) * 3,
                                              image_detail::unit_table(decode.style)};
    image_detail::prepare(view, opt, px.decoder, px.jpeg_warnings, out);
  } else {
    image_detail::prepare(image_detail::view_of(flt), opt, flt.decoder, flt.jpeg_warnings, out);
  }
  return Status::Ok();
}

// Reads an image file and prepares it: decode -> central crop (if < 1) ->
// resize to height x width, each step as opt.preset says.
inline Status load_image(const std::string& path, const PreprocessOptions& opt, Image* out) {
  image_detail::clear(out);
  FEATX_RETURN_IF_ERROR(image_detail::check_options(path, opt));
  std::vector<uint8_t> bytes;
  FEATX_RETURN_IF_ERROR(read_file(path, &bytes, opt.limits.file_bytes()));
  return load_image_memory(bytes.data(), bytes.size(), path, opt, out);
}

}  // namespace featx
