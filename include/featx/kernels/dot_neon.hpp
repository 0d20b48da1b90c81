// featx/kernels/dot_neon.hpp: dot-product tiles for similarity search,
// NEON: 4 queries x 4 rows per register tile on AArch64 (32 q registers),
// 2 x 4 on 32-bit ARM (16).
//
// Contract: DotTileKernel (dot_ref.hpp). Every score is one accumulator of
// 4 lanes (lane l sums dimensions l, l + 4, ... with vfmaq_f32 in order),
// then the same horizontal sum, whatever the tile shape around the pair.
// On 32-bit ARM NEON flushes subnormals to zero (vector_neon.hpp); unit
// vectors of 1280 dimensions have components near 1e-2, far above that.
#pragma once

#include <cstddef>

#include "featx/kernels/dot_ref.hpp"
#include "featx/kernels/isa.hpp"

#ifdef FEATX_HAVE_NEON

namespace featx {
namespace neon {

#ifdef __aarch64__
constexpr size_t kDotMR = 4, kDotNR = 4;
#else
constexpr size_t kDotMR = 2, kDotNR = 4;
#endif

inline float hsum(float32x4_t v) {
  const float32x2_t h = vadd_f32(vget_low_f32(v), vget_high_f32(v));
  return vget_lane_f32(vpadd_f32(h, h), 0);
}

template <size_t MR, size_t NR>
inline void dot_block(const float* q, const float* r, size_t stride, float* out, size_t out_stride) {
  float32x4_t acc[MR][NR];
  for (size_t i = 0; i < MR; ++i)
    for (size_t j = 0; j < NR; ++j) acc[i][j] = vdupq_n_f32(0.0f);
  for (size_t d = 0; d < stride; d += 4) {
    float32x4_t qv[MR];
    for (size_t i = 0; i < MR; ++i) qv[i] = vld1q_f32(q + i * stride + d);
    for (size_t j = 0; j < NR; ++j) {
      const float32x4_t rv = vld1q_f32(r + j * stride + d);
      for (size_t i = 0; i < MR; ++i) acc[i][j] = vfmaq_f32(acc[i][j], qv[i], rv);
    }
  }
  for (size_t i = 0; i < MR; ++i)
    for (size_t j = 0; j < NR; ++j) out[i * out_stride + j] = hsum(acc[i][j]);
}

template <size_t MR>
inline void dot_rows(const float* q, const float* rows, size_t nr, size_t stride, float* out, size_t out_stride) {
  size_t j = 0;
  for (; j + kDotNR <= nr; j += kDotNR) dot_block<MR, kDotNR>(q, rows + j * stride, stride, out + j, out_stride);
  for (; j < nr; ++j) dot_block<MR, 1>(q, rows + j * stride, stride, out + j, out_stride);
}

inline void dot_tile(const float* queries, size_t nq, const float* rows, size_t nr, size_t stride, float* out,
                     size_t out_stride) {
  size_t i = 0;
  for (; i + kDotMR <= nq; i += kDotMR)
    dot_rows<kDotMR>(queries + i * stride, rows, nr, stride, out + i * out_stride, out_stride);
  for (; i < nq; ++i) dot_rows<1>(queries + i * stride, rows, nr, stride, out + i * out_stride, out_stride);
}

}  // namespace neon
}  // namespace featx

#endif  // FEATX_HAVE_NEON
