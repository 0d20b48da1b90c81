// featx/image/central_crop.hpp: tf.image.central_crop.
#pragma once

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "featx/image/core.hpp"
#include "featx/image/pixel_view.hpp"
#include "featx/status.hpp"

namespace featx {

namespace image_detail {

inline int crop_start(int size, double fraction) {
  const double s = size;
  return static_cast<int>((s - rounded(s * fraction)) / 2);
}

// The central_crop window of a view (fraction in (0, 1], checked by the caller).
template <typename T>
inline RgbView<T> crop_view(RgbView<T> v, double fraction) {
  if (fraction == 1.0) return v;
  const int top = crop_start(v.height, fraction), left = crop_start(v.width, fraction);
  v.data += size_t(top) * v.stride + size_t(left) * 3;
  v.height -= 2 * top;
  v.width -= 2 * left;
  return v;
}

}  // namespace image_detail

// tf.image.central_crop(image, fraction) for fraction in (0, 1]. TF
// (python/ops/image_ops_impl.py) computes, for static shapes in Python floats
// (float64) and for dynamic ones in float64 tensors:
//   start = int((size - size * fraction) / 2)    (truncation; the value is >= 0)
//   crop  = size - 2 * start                      (not round(size * fraction))
// and returns the image unchanged when fraction == 1. fraction is a double
// here because TF's arithmetic is float64: 0.8 and 0.8f give different crops
// of a 10-pixel side (start 1 vs 0). `out` may alias `in`.
inline Status central_crop(const Image& in, double fraction, Image* out) {
  using namespace image_detail;
  if (!(fraction > 0.0 && fraction <= 1.0))  // also rejects NaN
    return invalid_argument("central_crop: fraction " + std::to_string(fraction) +
                            " is outside (0, 1]");
  if (!well_formed(in)) return invalid_argument("central_crop: empty or malformed image");
  if (fraction == 1.0) {
    if (out != &in) *out = in;
    return Status::Ok();
  }
  const int top = crop_start(in.height, fraction);
  const int left = crop_start(in.width, fraction);
  const int h = in.height - 2 * top, w = in.width - 2 * left;  // >= 1 since start < size / 2
  std::vector<float> dst(size_t(h) * size_t(w) * 3);
  for (int y = 0; y < h; ++y) {
    const float* src = in.rgb.data() + (size_t(top + y) * size_t(in.width) + size_t(left)) * 3;
    std::memcpy(dst.data() + size_t(y) * size_t(w) * 3, src, size_t(w) * 3 * sizeof(float));
  }
  out->height = h;
  out->width = w;
  out->rgb = std::move(dst);
  out->decoder = in.decoder;
  out->jpeg_warnings = in.jpeg_warnings;
  return Status::Ok();
}

}  // namespace featx
