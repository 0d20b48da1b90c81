// featx/kernels/dot_avx2.hpp: dot-product tiles for similarity search,
// AVX2 + FMA: up to 3 queries x 4 rows per register tile.
//
// Contract: DotTileKernel (dot_ref.hpp). Every score is one accumulator of
// 8 lanes (lane l sums dimensions l, l + 8, ... with FMA in order), then
// the same horizontal sum, whatever the tile shape around the pair.
#pragma once

#include <cstddef>

#include "featx/kernels/dot_ref.hpp"
#include "featx/kernels/isa.hpp"

#ifdef FEATX_HAVE_X86_SIMD

namespace featx {
namespace avx2 {

// 3 x 4: 12 accumulators + 3 query vectors + 1 row vector = the 16 ymm registers.
constexpr size_t kDotMR = 3, kDotNR = 4;

FEATX_TARGET_AVX2 inline float hsum(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

template <size_t MR, size_t NR>
FEATX_TARGET_AVX2 inline void dot_block(const float* q, const float* r, size_t stride, float* out,
                                        size_t out_stride) {
  __m256 acc[MR][NR];
#pragma GCC unroll 3
  for (size_t i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (size_t j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  for (size_t d = 0; d < stride; d += 8) {
    __m256 qv[MR];
#pragma GCC unroll 3
    for (size_t i = 0; i < MR; ++i) qv[i] = _mm256_loadu_ps(q + i * stride + d);
#pragma GCC unroll 4
    for (size_t j = 0; j < NR; ++j) {
      const __m256 rv = _mm256_loadu_ps(r + j * stride + d);
#pragma GCC unroll 3
      for (size_t i = 0; i < MR; ++i) acc[i][j] = _mm256_fmadd_ps(qv[i], rv, acc[i][j]);
    }
  }
#pragma GCC unroll 3
  for (size_t i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (size_t j = 0; j < NR; ++j) out[i * out_stride + j] = hsum(acc[i][j]);
}

template <size_t MR>
FEATX_TARGET_AVX2 inline void dot_rows(const float* q, const float* rows, size_t nr, size_t stride, float* out,
                                       size_t out_stride) {
  size_t j = 0;
  for (; j + kDotNR <= nr; j += kDotNR) dot_block<MR, kDotNR>(q, rows + j * stride, stride, out + j, out_stride);
  for (; j < nr; ++j) dot_block<MR, 1>(q, rows + j * stride, stride, out + j, out_stride);
}

FEATX_TARGET_AVX2 inline void dot_tile(const float* queries, size_t nq, const float* rows, size_t nr,
                                       size_t stride, float* out, size_t out_stride) {
  size_t i = 0;
  for (; i + kDotMR <= nq; i += kDotMR)
    dot_rows<kDotMR>(queries + i * stride, rows, nr, stride, out + i * out_stride, out_stride);
  for (; i < nq; ++i) dot_rows<1>(queries + i * stride, rows, nr, stride, out + i * out_stride, out_stride);
}

}  // namespace avx2
}  // namespace featx

#endif  // FEATX_HAVE_X86_SIMD
