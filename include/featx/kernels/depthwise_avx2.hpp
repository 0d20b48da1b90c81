// featx/kernels/depthwise_avx2.hpp: depthwise KxK convolution, AVX2 + FMA,
// 8 channels per vector, fused bias and activation, TF SAME padding.
//
// For 3x3 (every MobileNetV2 depthwise layer) the nine weight vectors of a
// channel group stay in registers while the kernel walks a row of output
// pixels. Taps are accumulated in (ky, kx) order from the bias, skipping
// padding, like depthwise_ref; channel tails are masked.
#pragma once

#include "featx/kernels/conv_ref.hpp"
#include "featx/kernels/pointwise_avx2.hpp"

#ifdef FEATX_HAVE_X86_SIMD

namespace featx {
namespace avx2 {

FEATX_TARGET_AVX2 inline void depthwise(const ConvGeometry& g, const float* input,
                                          const float* weights, const float* bias,
                                          Activation act, float* output, int row_begin,
                                          int row_end) {
  const int channels = g.out_c;
  const size_t in_row = size_t(g.in_w) * channels;
  for (int oy = row_begin; oy < row_end; ++oy) {
    const int iy0 = oy * g.stride - g.pad_top;
    float* out_row = output + size_t(oy) * g.out_w * channels;
    for (int c0 = 0; c0 < channels; c0 += 8) {
      const __m256i mask = tail_mask(channels - c0);
      const __m256 b = _mm256_maskload_ps(bias + c0, mask);
      if (g.kernel_h == 3 && g.kernel_w == 3) {
        __m256 w[9];
#pragma GCC unroll 9
        for (int t = 0; t < 9; ++t) w[t] = _mm256_maskload_ps(weights + size_t(t) * channels + c0, mask);
        for (int ox = 0; ox < g.out_w; ++ox) {
          const int ix0 = ox * g.stride - g.pad_left;
          __m256 acc = b;
#pragma GCC unroll 3
          for (int ky = 0; ky < 3; ++ky) {
            const int iy = iy0 + ky;
            if (iy < 0 || iy >= g.in_h) continue;
            const float* row = input + size_t(iy) * in_row + c0;
#pragma GCC unroll 3
            for (int kx = 0; kx < 3; ++kx) {
              const int ix = ix0 + kx;
              if (ix < 0 || ix >= g.in_w) continue;
              acc = _mm256_fmadd_ps(_mm256_maskload_ps(row + size_t(ix) * channels, mask), w[ky * 3 + kx], acc);
            }
          }
          _mm256_maskstore_ps(out_row + size_t(ox) * channels + c0, mask, activate(acc, act));
        }
      } else {
        for (int ox = 0; ox < g.out_w; ++ox) {
          const int ix0 = ox * g.stride - g.pad_left;
          __m256 acc = b;
          for (int ky = 0; ky < g.kernel_h; ++ky) {
            const int iy = iy0 + ky;
            if (iy < 0 || iy >= g.in_h) continue;
            for (int kx = 0; kx < g.kernel_w; ++kx) {
              const int ix = ix0 + kx;
              if (ix < 0 || ix >= g.in_w) continue;
              const __m256 wv = _mm256_maskload_ps(weights + (size_t(ky) * g.kernel_w + kx) * channels + c0, mask);
              acc = _mm256_fmadd_ps(_mm256_maskload_ps(input + size_t(iy) * in_row + size_t(ix) * channels + c0, mask), wv, acc);
            }
          }
          _mm256_maskstore_ps(out_row + size_t(ox) * channels + c0, mask, activate(acc, act));
        }
      }
    }
  }
}

}  // namespace avx2
}  // namespace featx

#endif  // FEATX_HAVE_X86_SIMD
