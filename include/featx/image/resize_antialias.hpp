// featx/image/resize_antialias.hpp: tf.image.resize(..., antialias=True)
// with the default bilinear method.
//
// TF implements it as ScaleAndTranslate with the triangle kernel
// (tensorflow/core/kernels/image/scale_and_translate_op.cc,
// sampling_kernels.h), scale = float32(out) / float32(in), translation 0.
// Per axis, output pixel x samples the input at
//   s = (x + 0.5f) * inv_scale,   inv_scale = float32(1.0 / double(scale)),
// with a triangle of radius kernel_scale = max(inv_scale, 1): when
// downsampling the kernel widens to cover every input pixel (a box-like
// low-pass), when upsampling it stays radius 1, which is plain bilinear
// interpolation (edges renormalised instead of clamped, same values up to
// float rounding). Input pixels j in [ceil(s - r - 0.5), floor(s + r - 0.5)],
// clamped to the image, get weight 1 - |j + 0.5 - s| / kernel_scale,
// normalised by their float sum. Rows are filtered first (every input
// column), then columns, each output the float sum in span order starting
// from 0 — all of it in float32 as TF's CPU kernel does, so results match bit
// for bit where neither side fuses multiply-adds (coordinates are kept from
// fusing here; the pixel sums fuse only when compiled for FMA, e.g.
// -march=native, which moves results by an ulp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "featx/image/core.hpp"
#include "featx/image/pixel_view.hpp"

namespace featx {
namespace image_detail {

// For each output index: the first input index and span_size weights.
struct Spans {
  int span_size = 0;
  std::vector<int> starts;
  std::vector<float> weights;  // output_size x span_size, zero-padded
};

inline float triangle(float x) {
  x = std::abs(x);
  return x < 1.0f ? 1.0f - x : 0.0f;
}

// TF's ComputeSpansCore for the triangle kernel, antialias on, translate 0.
inline Spans triangle_spans(int output_size, int input_size, float scale) {
  const float inv_scale = static_cast<float>(1.0 / static_cast<double>(scale));
  const float kernel_scale = std::max(inv_scale, 1.0f);
  const float radius = 1.0f;  // the triangle's
  Spans spans;
  spans.span_size = std::min(2 * static_cast<int>(std::ceil(radius * kernel_scale)) + 1, input_size);
  spans.starts.assign(size_t(output_size), 0);
  spans.weights.assign(size_t(output_size) * size_t(spans.span_size), 0.0f);
  const float one_over_kernel_scale = 1.0f / kernel_scale;
  std::vector<float> temp;
  for (int x = 0; x < output_size; ++x) {
    // TF adds inv_translate = -inv_scale * 0 = -0.0f here, which changes nothing.
    const float sample = rounded((static_cast<float>(x) + 0.5f) * inv_scale);
    if (sample < 0 || sample > static_cast<float>(input_size)) continue;  // empty span
    const int64_t last = input_size - 1;
    const int64_t start =
        std::min(std::max(static_cast<int64_t>(std::ceil(sample - radius * kernel_scale - 0.5f)), int64_t(0)), last);
    const int64_t end =
        std::min(std::max(static_cast<int64_t>(std::floor(sample + radius * kernel_scale - 0.5f)), int64_t(0)), last) +
        1;
    float total = 0.0f;
    temp.clear();
    for (int64_t source = start; source < end; ++source) {
      const float position = static_cast<float>(source) + 0.5f - sample;
      const float weight = triangle(rounded(position * one_over_kernel_scale));
      total += weight;
      temp.push_back(weight);
    }
    if (std::abs(total) >= 1000.0f * std::numeric_limits<float>::min()) {
      const float one_over_total = 1.0f / total;
      float* w = spans.weights.data() + size_t(x) * size_t(spans.span_size);
      for (size_t k = 0; k < temp.size() && k < size_t(spans.span_size); ++k) w[k] = temp[k] * one_over_total;
    }
    spans.starts[size_t(x)] = static_cast<int>(start);
  }
  return spans;
}

// ScaleAndTranslate (triangle, antialias) from any RGB window into *dst.
template <typename T>
inline void resize_antialias_view(const RgbView<T>& in, int out_h, int out_w, std::vector<float>* dst) {
  // tf.image.resize: scale = cast(size, float32) / cast(input shape, float32).
  const Spans rows = triangle_spans(out_h, in.height, static_cast<float>(out_h) / static_cast<float>(in.height));
  const Spans cols = triangle_spans(out_w, in.width, static_cast<float>(out_w) / static_cast<float>(in.width));
  const size_t in_row = size_t(in.width) * 3;

  // TF filters all rows into an out_h x in.width image (GatherRows), then
  // its columns (GatherColumns); an output row reads only its own filtered
  // row, so one row at a time gives the same sums without the big buffer.
  std::vector<float> mid(in_row);
  dst->resize(size_t(out_h) * size_t(out_w) * 3);
  for (int y = 0; y < out_h; ++y) {
    std::fill(mid.begin(), mid.end(), 0.0f);
    const int first_row = rows.starts[size_t(y)];
    const int row_count = std::min(first_row + rows.span_size, in.height) - first_row;
    const float* row_weights = rows.weights.data() + size_t(y) * size_t(rows.span_size);
    for (int k = 0; k < row_count; ++k) {
      const T* src = in.row(first_row + k);
      const float wk = row_weights[k];
      for (size_t i = 0; i < in_row; ++i) mid[i] += wk * value(in, src + i);
    }
    float* o = dst->data() + size_t(y) * size_t(out_w) * 3;
    for (int x = 0; x < out_w; ++x, o += 3) {
      const int first = cols.starts[size_t(x)];
      const int count = std::min(first + cols.span_size, in.width) - first;
      const float* w = cols.weights.data() + size_t(x) * size_t(cols.span_size);
      const float* p = mid.data() + size_t(first) * 3;
      float r = 0.0f, g = 0.0f, b = 0.0f;
      for (int k = 0; k < count; ++k, p += 3) {
        r += w[k] * p[0];
        g += w[k] * p[1];
        b += w[k] * p[2];
      }
      o[0] = r;
      o[1] = g;
      o[2] = b;
    }
  }
}

}  // namespace image_detail

// tf.image.resize(images, [out_h, out_w], antialias=True) (bilinear), see
// the top of this file. `out` may alias `in`. If `in` is malformed,
// out_h/out_w < 1 or h x w x 3 floats more than this target can address,
// *out becomes an empty 0x0 image.
inline void resize_antialias(const Image& in, int out_h, int out_w, Image* out) {
  using namespace image_detail;
  if (!can_resize(in, out_h, out_w)) {
    clear(out);
    return;
  }
  std::vector<float> dst;
  resize_antialias_view(view_of(in), out_h, out_w, &dst);
  set_image(out, out_h, out_w, std::move(dst), in.decoder, in.jpeg_warnings);
}

}  // namespace featx
