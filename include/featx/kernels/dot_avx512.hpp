// featx/kernels/dot_avx512.hpp: dot-product tiles for similarity search,
// AVX-512: up to 4 queries x 6 rows per register tile.
//
// Contract: DotTileKernel (dot_ref.hpp). Every score is one accumulator:
// 16 lanes, lane l summing the products of dimensions l, l + 16, ... with
// FMA in order, then the same horizontal sum. Edge tiles (fewer queries
// or rows) run the same chain per pair, so a score does not depend on
// where its pair falls in the tile.
#pragma once

#include <cstddef>

#include "featx/kernels/dot_ref.hpp"
#include "featx/kernels/isa.hpp"

#ifdef FEATX_HAVE_X86_SIMD

// GCC 12's _mm512_extractf64x4_pd passes an intentionally undefined
// operand; inlined here it warns about the header, not about us.
#pragma GCC diagnostic push
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace featx {
namespace avx512 {

// 4 x 6: 24 accumulators + 4 query vectors + 1 row vector of the 32 zmm
// registers; per 16 dimensions 10 loads feed 24 FMAs.
constexpr size_t kDotMR = 4, kDotNR = 6;

FEATX_TARGET_AVX512 inline float hsum(__m512 v) {
  // A fixed order, spelled out: halves, then quarters, then pairs.
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),
                                 _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

template <size_t MR, size_t NR>
FEATX_TARGET_AVX512 inline void dot_block(const float* q, const float* r, size_t stride, float* out,
                                          size_t out_stride) {
  __m512 acc[MR][NR];
#pragma GCC unroll 4
  for (size_t i = 0; i < MR; ++i)
#pragma GCC unroll 6
    for (size_t j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  for (size_t d = 0; d < stride; d += 16) {
    __m512 qv[MR];
#pragma GCC unroll 4
    for (size_t i = 0; i < MR; ++i) qv[i] = _mm512_loadu_ps(q + i * stride + d);
#pragma GCC unroll 6
    for (size_t j = 0; j < NR; ++j) {
      const __m512 rv = _mm512_loadu_ps(r + j * stride + d);
#pragma GCC unroll 4
      for (size_t i = 0; i < MR; ++i) acc[i][j] = _mm512_fmadd_ps(qv[i], rv, acc[i][j]);
    }
  }
#pragma GCC unroll 4
  for (size_t i = 0; i < MR; ++i)
#pragma GCC unroll 6
    for (size_t j = 0; j < NR; ++j) out[i * out_stride + j] = hsum(acc[i][j]);
}

// MR queries against rows [0, nr): full NR-row blocks, then rows one at a time.
template <size_t MR>
FEATX_TARGET_AVX512 inline void dot_rows(const float* q, const float* rows, size_t nr, size_t stride, float* out,
                                         size_t out_stride) {
  size_t j = 0;
  for (; j + kDotNR <= nr; j += kDotNR) dot_block<MR, kDotNR>(q, rows + j * stride, stride, out + j, out_stride);
  for (; j < nr; ++j) dot_block<MR, 1>(q, rows + j * stride, stride, out + j, out_stride);
}

FEATX_TARGET_AVX512 inline void dot_tile(const float* queries, size_t nq, const float* rows, size_t nr,
                                         size_t stride, float* out, size_t out_stride) {
  size_t i = 0;
  for (; i + kDotMR <= nq; i += kDotMR)
    dot_rows<kDotMR>(queries + i * stride, rows, nr, stride, out + i * out_stride, out_stride);
  for (; i < nq; ++i) dot_rows<1>(queries + i * stride, rows, nr, stride, out + i * out_stride, out_stride);
}

}  // namespace avx512
}  // namespace featx

#pragma GCC diagnostic pop

#endif  // FEATX_HAVE_X86_SIMD
