// featx/image/resize_bilinear.hpp: tf.image.resize with TF2's defaults
// (bilinear, half-pixel centres, antialias off), in float32 like TF's CPU
// kernel (tensorflow/core/kernels/image/resize_bilinear_op.cc).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "featx/image/core.hpp"
#include "featx/image/pixel_view.hpp"

namespace featx {

namespace image_detail {

// One output coordinate's source rows (or columns) and blend weight.
struct Interp {
  int64_t lower, upper;
  float lerp;
};

// Mirrors TF's compute_interpolation_weights with HalfPixelScaler
// (tensorflow/core/kernels/image/resize_bilinear_op.cc, image_resizer_state.h):
//   scale = float(in_size) / float(out_size)
//   in    = (float(i) + 0.5f) * scale - 0.5f
//   lower = max(floor(in), 0), upper = min(ceil(in), in_size - 1),
//   lerp  = in - floor(in)
// all in float32. Where in < 0 (or beyond the last pixel) lower == upper, so
// the lerp value is irrelevant: this is the same as clamping in to >= 0 first.
inline std::vector<Interp> interpolation(int out_size, int in_size) {
  std::vector<Interp> v(static_cast<size_t>(out_size));
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  for (int i = 0; i < out_size; ++i) {
    const float in = rounded((static_cast<float>(i) + 0.5f) * scale) - 0.5f;
    const float in_f = std::floor(in);
    const int64_t last = in_size - 1;
    v[size_t(i)].lower = std::min(std::max(static_cast<int64_t>(in_f), int64_t(0)), last);
    v[size_t(i)].upper = std::min(static_cast<int64_t>(std::ceil(in)), last);
    v[size_t(i)].lerp = in - in_f;
  }
  return v;
}

// TF's compute_lerp, same operation order so results match bit for bit
// when neither side contracts the expressions into FMAs (TF's own build
// flags decide that for TF; within 1 ulp either way).
inline float lerp2d(float tl, float tr, float bl, float br, float xl, float yl) {
  const float top = tl + (tr - tl) * xl;
  const float bottom = bl + (br - bl) * xl;
  return top + (bottom - top) * yl;
}

// ResizeBilinear (half-pixel centres) from any RGB window into *dst.
template <typename T>
inline void resize_bilinear_view(const RgbView<T>& in, int out_h, int out_w, std::vector<float>* dst) {
  const std::vector<Interp> ys = interpolation(out_h, in.height);
  const std::vector<Interp> xs = interpolation(out_w, in.width);
  dst->resize(size_t(out_h) * size_t(out_w) * 3);
  float* o = dst->data();
  for (int y = 0; y < out_h; ++y) {
    const Interp& iy = ys[size_t(y)];
    const T* top = in.row(static_cast<int>(iy.lower));
    const T* bot = in.row(static_cast<int>(iy.upper));
    for (int x = 0; x < out_w; ++x) {
      const Interp& ix = xs[size_t(x)];
      const size_t l = size_t(ix.lower) * 3, u = size_t(ix.upper) * 3;
      for (size_t c = 0; c < 3; ++c)
        *o++ = lerp2d(value(in, top + l + c), value(in, top + u + c), value(in, bot + l + c),
                      value(in, bot + u + c), ix.lerp, iy.lerp);
    }
  }
}

}  // namespace image_detail

// Resizes like TF2's tf.image.resize(images, [out_h, out_w]) with its
// defaults (method=bilinear, antialias=False, i.e. ResizeBilinear with
// half_pixel_centers=True): up, down, any aspect. Computed in float32 like
// TF's CPU kernel, which also computes source coordinates in float32, so
// this matches TF more closely than a double-precision version would.
// Same size returns an exact copy. `out` may alias `in`. If `in` is
// malformed, out_h/out_w < 1 or h x w x 3 floats more than this target can
// address, *out becomes an empty 0x0 image.
inline void resize_bilinear(const Image& in, int out_h, int out_w, Image* out) {
  using namespace image_detail;
  if (!can_resize(in, out_h, out_w)) {
    clear(out);
    return;
  }
  if (out_h == in.height && out_w == in.width) {
    if (out != &in) *out = in;
    return;
  }
  std::vector<float> dst;
  resize_bilinear_view(view_of(in), out_h, out_w, &dst);
  set_image(out, out_h, out_w, std::move(dst), in.decoder, in.jpeg_warnings);
}

}  // namespace featx
