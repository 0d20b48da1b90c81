// featx/kernels/dot_ref.hpp: dot products of query rows against database
// rows, the kernel of exact similarity search (featx/search.hpp); the
// scalar reference that the SIMD variants (dot_avx2, dot_avx512, dot_neon)
// are tested against.
//
// Contract shared by every variant (DotTileKernel):
//   out[i * out_stride + j] = dot(queries + i * stride, rows + j * stride)
// over `stride` floats, for i < nq, j < nr. stride is a multiple of
// kDotStrideAlign (16 floats: one AVX-512 vector, four NEON ones); rows
// shorter than that are zero-padded by their owner, and a zero adds
// nothing, so the kernels need no tail code. Any float pointer works
// (unaligned loads); featx's index keeps rows 64-byte aligned anyway.
//
// Each score is computed by the same operations whatever nq, nr and the
// position of the pair in the tile: a variant's result for a pair does not
// depend on how a search splits its work into tiles or threads. Variants
// differ from each other by float rounding (lane order, FMA).
#pragma once

#include <cstddef>

namespace featx {

constexpr size_t kDotStrideAlign = 16;

using DotTileKernel = void (*)(const float* queries, size_t nq, const float* rows, size_t nr,
                               size_t stride, float* out, size_t out_stride);

// The specification: products are exact in double, summed in index order,
// rounded to float once.
inline float dot_ref(const float* a, const float* b, size_t n) {
  double acc = 0.0;
  for (size_t i = 0; i < n; ++i) acc += double(a[i]) * double(b[i]);
  return float(acc);
}

inline void dot_tile_naive(const float* queries, size_t nq, const float* rows, size_t nr, size_t stride,
                           float* out, size_t out_stride) {
  for (size_t i = 0; i < nq; ++i)
    for (size_t j = 0; j < nr; ++j) out[i * out_stride + j] = dot_ref(queries + i * stride, rows + j * stride, stride);
}

// The scalar ISA's kernel: dot_ref's arithmetic bit for bit (each chain is
// the same double sum in the same order), two queries x two rows per step
// so each loaded value serves two chains.
inline void dot_tile_ref(const float* queries, size_t nq, const float* rows, size_t nr, size_t stride,
                         float* out, size_t out_stride) {
  size_t i = 0;
  for (; i + 2 <= nq; i += 2) {
    const float* q0 = queries + i * stride;
    const float* q1 = q0 + stride;
    size_t j = 0;
    for (; j + 2 <= nr; j += 2) {
      const float* r0 = rows + j * stride;
      const float* r1 = r0 + stride;
      double a00 = 0.0, a01 = 0.0, a10 = 0.0, a11 = 0.0;
      for (size_t d = 0; d < stride; ++d) {
        const double x0 = q0[d], x1 = q1[d], y0 = r0[d], y1 = r1[d];
        a00 += x0 * y0;
        a01 += x0 * y1;
        a10 += x1 * y0;
        a11 += x1 * y1;
      }
      out[i * out_stride + j] = float(a00);
      out[i * out_stride + j + 1] = float(a01);
      out[(i + 1) * out_stride + j] = float(a10);
      out[(i + 1) * out_stride + j + 1] = float(a11);
    }
    for (; j < nr; ++j) {
      out[i * out_stride + j] = dot_ref(q0, rows + j * stride, stride);
      out[(i + 1) * out_stride + j] = dot_ref(q1, rows + j * stride, stride);
    }
  }
  for (; i < nq; ++i)
    for (size_t j = 0; j < nr; ++j) out[i * out_stride + j] = dot_ref(queries + i * stride, rows + j * stride, stride);
}

}  // namespace featx
