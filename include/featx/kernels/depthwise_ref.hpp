// featx/kernels/depthwise_ref.hpp: depthwise KxK convolution (multiplier 1),
// scalar reference, TF SAME padding, fused bias and activation.
//
// input [in_h][in_w][c], weights [kh][kw][c]. Accumulates in double.
// Computes output rows [row_begin, row_end).
#pragma once

#include "featx/kernels/conv_ref.hpp"

namespace featx {

inline void depthwise_ref(const ConvGeometry& g, const float* input, const float* weights,
                          const float* bias, Activation act, float* output, int row_begin,
                          int row_end) {
  constexpr int kChunk = 64;
  double acc[kChunk];
  const int channels = g.out_c;
  for (int oy = row_begin; oy < row_end; ++oy) {
    for (int ox = 0; ox < g.out_w; ++ox) {
      float* out = output + (size_t(oy) * g.out_w + ox) * channels;
      for (int c0 = 0; c0 < channels; c0 += kChunk) {
        const int n = channels - c0 < kChunk ? channels - c0 : kChunk;
        for (int j = 0; j < n; ++j) acc[j] = bias[c0 + j];
        for (int ky = 0; ky < g.kernel_h; ++ky) {
          const int iy = oy * g.stride - g.pad_top + ky;
          if (iy < 0 || iy >= g.in_h) continue;
          for (int kx = 0; kx < g.kernel_w; ++kx) {
            const int ix = ox * g.stride - g.pad_left + kx;
            if (ix < 0 || ix >= g.in_w) continue;
            const float* in = input + (size_t(iy) * g.in_w + ix) * channels + c0;
            const float* w = weights + (size_t(ky) * g.kernel_w + kx) * channels + c0;
            for (int j = 0; j < n; ++j) acc[j] += double(in[j]) * double(w[j]);
          }
        }
        for (int j = 0; j < n; ++j) out[c0 + j] = float(apply_activation(acc[j], act));
      }
    }
  }
}

}  // namespace featx
