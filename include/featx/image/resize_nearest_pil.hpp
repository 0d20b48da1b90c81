// featx/image/resize_nearest_pil.hpp: PIL's Image.resize(size, NEAREST), the
// default of keras.utils.load_img(path, target_size=...).
//
// Pillow (_imaging.c _resize, Geometry.c ImagingScaleAffine) maps output
// column x to input column int(p_x), where p_0 = step / 2 and
// p_{x+1} = p_x + step, step = double(in) / out: a running double sum, not
// (x + 0.5) * step, and the two differ in the last bit often enough to pick
// another pixel where p lands on an integer. Same for rows. Indices outside
// the image would be black (Pillow's fill); for a plain resize they are not.
#pragma once

#include <cstddef>
#include <vector>

#include "featx/image/core.hpp"
#include "featx/image/pixel_view.hpp"

namespace featx {
namespace image_detail {

// Input index per output index, -1 where Pillow would leave the pixel black.
inline std::vector<int> pil_nearest_indices(int out_size, int in_size) {
  std::vector<int> index(size_t(out_size), -1);
  const double step = static_cast<double>(in_size) / out_size;
  double position = rounded(step * 0.5);
  for (int i = 0; i < out_size; ++i) {
    const int at = position < 0.0 ? -1 : static_cast<int>(position);
    if (at >= 0 && at < in_size) index[size_t(i)] = at;
    position += step;
  }
  return index;
}

// PIL NEAREST from any RGB window into *dst (pure selection of values).
template <typename T>
inline void resize_nearest_pil_view(const RgbView<T>& in, int out_h, int out_w, std::vector<float>* dst) {
  const std::vector<int> ys = pil_nearest_indices(out_h, in.height);
  const std::vector<int> xs = pil_nearest_indices(out_w, in.width);
  dst->assign(size_t(out_h) * size_t(out_w) * 3, 0.0f);
  float* o = dst->data();
  for (int y = 0; y < out_h; ++y) {
    const int sy = ys[size_t(y)];
    for (int x = 0; x < out_w; ++x, o += 3) {
      const int sx = xs[size_t(x)];
      if (sy < 0 || sx < 0) continue;
      const T* p = in.row(sy) + size_t(sx) * 3;
      o[0] = value(in, p);
      o[1] = value(in, p + 1);
      o[2] = value(in, p + 2);
    }
  }
}

}  // namespace image_detail

// Nearest-neighbour resize with Pillow's coordinates (see top). Pure
// selection: the values are the input's. `out` may alias `in`. If `in` is
// malformed, out_h/out_w < 1 or h x w x 3 floats more than this target can
// address, *out becomes an empty 0x0 image.
inline void resize_nearest_pil(const Image& in, int out_h, int out_w, Image* out) {
  using namespace image_detail;
  if (!can_resize(in, out_h, out_w)) {
    clear(out);
    return;
  }
  std::vector<float> dst;
  resize_nearest_pil_view(view_of(in), out_h, out_w, &dst);
  set_image(out, out_h, out_w, std::move(dst), in.decoder, in.jpeg_warnings);
}

}  // namespace featx
