// featx/kernels/pointwise_avx2.hpp: 1x1 convolution, AVX2 + FMA, up to 6
// pixels x 16 channels (one weight panel) per register tile: 12
// accumulators of the 16 ymm registers.
//
// Same contract and accumulation order as pointwise_avx512; a k step reads
// one cache line of the panel; channel tails mask only bias,
// residual and stores (panels are zero-padded).
#pragma once

#include <cstddef>

#include "featx/kernels/activation.hpp"
#include "featx/kernels/gemm_tiling.hpp"
#include "featx/kernels/isa.hpp"
#include "featx/kernels/packed_weights.hpp"

#ifdef FEATX_HAVE_X86_SIMD

namespace featx {
namespace avx2 {

constexpr int kPointwiseMR = 6, kPointwiseNR = kPanelWidth;

// Lane i is active when i < n (n may be <= 0 or >= 8).
FEATX_TARGET_AVX2 inline __m256i tail_mask(int n) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lanes);
}

FEATX_TARGET_AVX2 inline __m256 activate(__m256 v, Activation act) {
  if (act == Activation::none) return v;
  v = _mm256_max_ps(v, _mm256_setzero_ps());
  if (act == Activation::relu6) v = _mm256_min_ps(v, _mm256_set1_ps(6.0f));
  return v;
}

// MR pixels x n (1..16) channels of one panel (see pointwise_avx512).
template <int MR>
FEATX_TARGET_AVX2 inline void pointwise_tile(const float* input, int in_c, const float* panel,
                                             int out_c, const float* bias, Activation act,
                                             const float* residual, float* output, int n) {
  const __m256i m0 = tail_mask(n), m1 = tail_mask(n - 8);
  __m256 acc0[MR], acc1[MR];
  if (bias) {
    const __m256 b0 = _mm256_maskload_ps(bias, m0), b1 = _mm256_maskload_ps(bias + 8, m1);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) acc0[r] = b0, acc1[r] = b1;
  } else {  // continue the chains stored by an earlier K chunk
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      acc0[r] = _mm256_maskload_ps(output + size_t(r) * out_c, m0);
      acc1[r] = _mm256_maskload_ps(output + size_t(r) * out_c + 8, m1);
    }
  }
  const float* w = panel;
  if (n > 8) {
    for (int k = 0; k < in_c; ++k, w += kPanelWidth) {
      const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const __m256 a = _mm256_broadcast_ss(input + size_t(r) * in_c + k);
        acc0[r] = _mm256_fmadd_ps(a, w0, acc0[r]);
        acc1[r] = _mm256_fmadd_ps(a, w1, acc1[r]);
      }
    }
  } else {
    for (int k = 0; k < in_c; ++k, w += kPanelWidth) {
      const __m256 w0 = _mm256_loadu_ps(w);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r)
        acc0[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(input + size_t(r) * in_c + k), w0, acc0[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    __m256 v0 = acc0[r], v1 = acc1[r];
    if (residual) {
      v0 = _mm256_add_ps(v0, _mm256_maskload_ps(residual + size_t(r) * out_c, m0));
      v1 = _mm256_add_ps(v1, _mm256_maskload_ps(residual + size_t(r) * out_c + 8, m1));
    }
    _mm256_maskstore_ps(output + size_t(r) * out_c, m0, activate(v0, act));
    if (n > 8) _mm256_maskstore_ps(output + size_t(r) * out_c + 8, m1, activate(v1, act));
  }
}

// The one switch from a run-time pixel count (1..6) to a tile.
FEATX_TARGET_AVX2 inline void pointwise_rows(int m, const float* input, int in_c,
                                             const float* panel, int out_c, const float* bias,
                                             Activation act, const float* residual,
                                             float* output, int n) {
  switch (m) {
    case 6: pointwise_tile<6>(input, in_c, panel, out_c, bias, act, residual, output, n); break;
    case 5: pointwise_tile<5>(input, in_c, panel, out_c, bias, act, residual, output, n); break;
    case 4: pointwise_tile<4>(input, in_c, panel, out_c, bias, act, residual, output, n); break;
    case 3: pointwise_tile<3>(input, in_c, panel, out_c, bias, act, residual, output, n); break;
    case 2: pointwise_tile<2>(input, in_c, panel, out_c, bias, act, residual, output, n); break;
    default: pointwise_tile<1>(input, in_c, panel, out_c, bias, act, residual, output, n); break;
  }
}

// n_begin must be a multiple of kPanelWidth.
inline void pointwise(const float* input, size_t pixel_begin, size_t pixel_end, int in_c,
                      const float* weights, const float* bias, int out_c, Activation act,
                      const float* residual, float* output, int n_begin, int n_end) {
  pointwise_tiled<kPointwiseMR, kPointwiseNR>(input, pixel_begin, pixel_end, in_c, weights, bias,
                                              out_c, act, residual, output, n_begin, n_end,
                                              pointwise_rows);
}

}  // namespace avx2
}  // namespace featx

#endif  // FEATX_HAVE_X86_SIMD
