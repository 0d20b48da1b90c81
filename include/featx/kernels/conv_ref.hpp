// featx/kernels/conv_ref.hpp: full KxK convolution, scalar reference.
//
// NHWC input of one image, HWIO weights viewed as a [kh*kw*in][out] matrix
// packed in panels (packed_weights.hpp), TF SAME padding, fused bias and
// activation. Accumulates in double: the reference is the most accurate
// kernel featx has, and every faster variant is tested against it.
// Computes output rows [row_begin, row_end) so callers can split rows
// across threads without changing any result.
#pragma once

#include <cstddef>

#include "featx/kernels/activation.hpp"
#include "featx/kernels/packed_weights.hpp"

namespace featx {

struct ConvGeometry {
  int in_h = 0, in_w = 0, in_c = 0;
  int out_h = 0, out_w = 0, out_c = 0;
  int kernel_h = 1, kernel_w = 1, stride = 1;
  int pad_top = 0, pad_left = 0;
};

inline void conv2d_ref(const ConvGeometry& g, const float* input, const float* weights,
                       const float* bias, Activation act, float* output, int row_begin,
                       int row_end) {
  constexpr int kChunk = 64;  // accumulators live on the stack: kernels never allocate
  double acc[kChunk];
  for (int oy = row_begin; oy < row_end; ++oy) {
    for (int ox = 0; ox < g.out_w; ++ox) {
      float* out = output + (size_t(oy) * g.out_w + ox) * g.out_c;
      for (int c0 = 0; c0 < g.out_c; c0 += kChunk) {
        const int n = g.out_c - c0 < kChunk ? g.out_c - c0 : kChunk;
        const int depth = g.kernel_h * g.kernel_w * g.in_c;
        for (int j = 0; j < n; ++j) acc[j] = bias[c0 + j];
        for (int ky = 0; ky < g.kernel_h; ++ky) {
          const int iy = oy * g.stride - g.pad_top + ky;
          if (iy < 0 || iy >= g.in_h) continue;  // zero padding
          for (int kx = 0; kx < g.kernel_w; ++kx) {
            const int ix = ox * g.stride - g.pad_left + kx;
            if (ix < 0 || ix >= g.in_w) continue;
            const float* in = input + (size_t(iy) * g.in_w + ix) * g.in_c;
            const int row0 = (ky * g.kernel_w + kx) * g.in_c;
            for (int ci = 0; ci < g.in_c; ++ci) {
              const double a = in[ci];
              for (int j = 0; j < n; ++j)
                acc[j] += a * double(weights[packed_index(depth, row0 + ci, c0 + j)]);
            }
          }
        }
        for (int j = 0; j < n; ++j) out[c0 + j] = float(apply_activation(acc[j], act));
      }
    }
  }
}

}  // namespace featx
