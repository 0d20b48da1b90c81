// featx/kernels/pool_avx2.hpp: global average and max pooling, AVX2, 8
// channels per step, masked channel tail. Same arithmetic as pool_avx512:
// the average sums widened doubles in pixel order (bit-identical to
// global_avg_pool_ref), the max is `in > acc ? in : acc`.
#pragma once

#include <cstddef>

#include "featx/kernels/isa.hpp"
#include "featx/kernels/pointwise_avx2.hpp"

#ifdef FEATX_HAVE_X86_SIMD

namespace featx {
namespace avx2 {

FEATX_TARGET_AVX2 inline void global_avg_pool(const float* input, size_t pixels, int channels,
                                              float* output) {
  const __m256d count = _mm256_set1_pd(double(pixels));
  for (int c0 = 0; c0 < channels; c0 += 8) {
    const __m256i mask = tail_mask(channels - c0);
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    for (size_t p = 0; p < pixels; ++p) {
      const __m256 v = _mm256_maskload_ps(input + p * size_t(channels) + c0, mask);
      lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
      hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    const __m128 mean_lo = _mm256_cvtpd_ps(_mm256_div_pd(lo, count));
    const __m128 mean_hi = _mm256_cvtpd_ps(_mm256_div_pd(hi, count));
    _mm256_maskstore_ps(output + c0, mask, _mm256_set_m128(mean_hi, mean_lo));
  }
}

FEATX_TARGET_AVX2 inline void global_max_pool(const float* input, size_t pixels, int channels,
                                              float* output) {
  for (int c0 = 0; c0 < channels; c0 += 8) {
    const __m256i mask = tail_mask(channels - c0);
    __m256 acc = _mm256_maskload_ps(input + c0, mask);
    for (size_t p = 1; p < pixels; ++p)
      acc = _mm256_max_ps(_mm256_maskload_ps(input + p * size_t(channels) + c0, mask), acc);
    _mm256_maskstore_ps(output + c0, mask, acc);
  }
}

}  // namespace avx2
}  // namespace featx

#endif  // FEATX_HAVE_X86_SIMD
