// featx/kernels/pointwise_ref.hpp: 1x1 convolution (a GEMM over pixels),
// scalar reference, with fused bias, activation and optional residual add.
//
// input [pixels][in_c], weights [in_c][out_c] packed in panels
// (packed_weights.hpp), residual [pixels][out_c] or null. Computes pixels [pixel_begin, pixel_end) and output channels
// [n_begin, n_end) so callers can split work both ways. Accumulates in double
// (bias null: from the float already in output, see kernel_set.hpp). The residual is added after bias, before the
// activation, as in MobileNetV2 (project convs have no activation).
#pragma once

#include <cstddef>

#include "featx/kernels/activation.hpp"
#include "featx/kernels/packed_weights.hpp"

namespace featx {

inline void pointwise_ref(const float* input, size_t pixel_begin, size_t pixel_end, int in_c,
                          const float* weights, const float* bias, int out_c, Activation act,
                          const float* residual, float* output, int n_begin, int n_end) {
  constexpr int kChunk = 64;
  double acc[kChunk];
  for (size_t p = pixel_begin; p < pixel_end; ++p) {
    const float* in = input + p * size_t(in_c);
    float* out = output + p * size_t(out_c);
    for (int c0 = n_begin; c0 < n_end; c0 += kChunk) {
      const int n = n_end - c0 < kChunk ? n_end - c0 : kChunk;
      for (int j = 0; j < n; ++j) acc[j] = bias ? bias[c0 + j] : out[c0 + j];
      for (int ci = 0; ci < in_c; ++ci) {
        const double a = in[ci];
        for (int j = 0; j < n; ++j) acc[j] += a * double(weights[packed_index(in_c, ci, c0 + j)]);
      }
      if (residual) {
        const float* r = residual + p * size_t(out_c) + c0;
        for (int j = 0; j < n; ++j) acc[j] += r[j];
      }
      for (int j = 0; j < n; ++j) out[c0 + j] = float(apply_activation(acc[j], act));
    }
  }
}

}  // namespace featx
