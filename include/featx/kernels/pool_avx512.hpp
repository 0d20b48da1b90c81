// featx/kernels/pool_avx512.hpp: global average and max pooling, AVX-512,
// 16 channels per step, masked channel tail.
//
// The average widens each float to double and sums the pixels in order,
// as global_avg_pool_ref does, so the feature vector is bit-identical to
// the reference's on every ISA (and so to AVX2's and NEON's). The max keeps
// the reference's NaN behaviour: max_ps(in, acc) is `in > acc ? in : acc`.
#pragma once

#include <cstddef>

#include "featx/kernels/isa.hpp"
#include "featx/kernels/pointwise_avx512.hpp"

#ifdef FEATX_HAVE_X86_SIMD

#pragma GCC diagnostic push
#if !defined(__clang__)  // a GCC-only warning; clang would warn that it does not know it
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace featx {
namespace avx512 {

FEATX_TARGET_AVX512 inline void global_avg_pool(const float* input, size_t pixels, int channels,
                                                float* output) {
  const __m512d count = _mm512_set1_pd(double(pixels));
  for (int c0 = 0; c0 < channels; c0 += 16) {
    const __mmask16 mask = tail_mask(channels - c0);
    __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
    for (size_t p = 0; p < pixels; ++p) {
      const __m512 v = _mm512_maskz_loadu_ps(mask, input + p * size_t(channels) + c0);
      lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
      hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
    }
    const __m256 mean_lo = _mm512_cvtpd_ps(_mm512_div_pd(lo, count));
    const __m256 mean_hi = _mm512_cvtpd_ps(_mm512_div_pd(hi, count));
    const __m512 mean = _mm512_insertf32x8(_mm512_castps256_ps512(mean_lo), mean_hi, 1);
    _mm512_mask_storeu_ps(output + c0, mask, mean);
  }
}

FEATX_TARGET_AVX512 inline void global_max_pool(const float* input, size_t pixels, int channels,
                                                float* output) {
  for (int c0 = 0; c0 < channels; c0 += 16) {
    const __mmask16 mask = tail_mask(channels - c0);
    __m512 acc = _mm512_maskz_loadu_ps(mask, input + c0);
    for (size_t p = 1; p < pixels; ++p)
      acc = _mm512_max_ps(_mm512_maskz_loadu_ps(mask, input + p * size_t(channels) + c0), acc);
    _mm512_mask_storeu_ps(output + c0, mask, acc);
  }
}

}  // namespace avx512
}  // namespace featx

#pragma GCC diagnostic pop

#endif  // FEATX_HAVE_X86_SIMD
