// featx/kernels/conv_avx2.hpp: full KxK convolution (the 3x3 stride-2 stem),
// AVX2 + FMA, on the 6x16 register tile of pointwise_avx2.
//
// Same scheme as conv_avx512: weights [kh][kw][in][out] are already a
// [kh*kw*in][out] matrix (packed in 16-column panels like a 1x1 conv's).
// Interior pixels, whose whole window is inside the input, read their
// inputs straight from the image: one kernel row of a window is kw*in
// contiguous floats in NHWC, so row k of the matrix is tap (ky, i) at
// origin + ky * row_step + i. Border pixels are gathered into a small
// zero-padded patch matrix on the stack (im2col; adding 0 * w leaves a
// float sum unchanged) and go through the pointwise tile. Both paths run
// the same FMA chain over k, the same as AVX-512's, so a pixel's value
// depends neither on the path nor on the ISA that computed it.
#pragma once

#include "featx/kernels/conv_interior.hpp"
#include "featx/kernels/conv_ref.hpp"
#include "featx/kernels/gemm_tiling.hpp"
#include "featx/kernels/im2col.hpp"
#include "featx/kernels/pointwise_avx2.hpp"

#ifdef FEATX_HAVE_X86_SIMD

namespace featx {
namespace avx2 {

// MR interior pixels x n (1..16) channels of one panel. origin: the first
// pixel's window corner; pixel_step / row_step: floats to the next pixel's
// window / the next kernel row; span = kw * in floats per kernel row.
template <int MR>
FEATX_TARGET_AVX2 inline void conv_direct_tile(const float* origin, size_t pixel_step,
                                               size_t row_step, int kernel_h, int span,
                                               const float* panel, int out_c,
                                               const float* bias, Activation act,
                                               float* output, int n) {
  const __m256i m0 = tail_mask(n), m1 = tail_mask(n - 8);
  __m256 acc0[MR], acc1[MR];
  const __m256 b0 = _mm256_maskload_ps(bias, m0), b1 = _mm256_maskload_ps(bias + 8, m1);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc0[r] = b0, acc1[r] = b1;
  const float* w = panel;
  if (n > 8) {
    for (int ky = 0; ky < kernel_h; ++ky) {
      const float* src = origin + size_t(ky) * row_step;
      for (int i = 0; i < span; ++i, w += kPanelWidth) {
        const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          const __m256 a = _mm256_broadcast_ss(src + size_t(r) * pixel_step + size_t(i));
          acc0[r] = _mm256_fmadd_ps(a, w0, acc0[r]);
          acc1[r] = _mm256_fmadd_ps(a, w1, acc1[r]);
        }
      }
    }
  } else {
    for (int ky = 0; ky < kernel_h; ++ky) {
      const float* src = origin + size_t(ky) * row_step;
      for (int i = 0; i < span; ++i, w += kPanelWidth) {
        const __m256 w0 = _mm256_loadu_ps(w);
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r)
          acc0[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(src + size_t(r) * pixel_step + size_t(i)), w0, acc0[r]);
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    _mm256_maskstore_ps(output + size_t(r) * out_c, m0, activate(acc0[r], act));
    if (n > 8) _mm256_maskstore_ps(output + size_t(r) * out_c + 8, m1, activate(acc1[r], act));
  }
}

// The one switch from a run-time pixel count (1..6) to a tile.
FEATX_TARGET_AVX2 inline void conv_direct_rows(int m, const float* origin, size_t pixel_step,
                                               size_t row_step, int kernel_h, int span,
                                               const float* panel, int out_c,
                                               const float* bias, Activation act,
                                               float* output, int n) {
  switch (m) {
    case 6: conv_direct_tile<6>(origin, pixel_step, row_step, kernel_h, span, panel, out_c, bias, act, output, n); break;
    case 5: conv_direct_tile<5>(origin, pixel_step, row_step, kernel_h, span, panel, out_c, bias, act, output, n); break;
    case 4: conv_direct_tile<4>(origin, pixel_step, row_step, kernel_h, span, panel, out_c, bias, act, output, n); break;
    case 3: conv_direct_tile<3>(origin, pixel_step, row_step, kernel_h, span, panel, out_c, bias, act, output, n); break;
    case 2: conv_direct_tile<2>(origin, pixel_step, row_step, kernel_h, span, panel, out_c, bias, act, output, n); break;
    default: conv_direct_tile<1>(origin, pixel_step, row_step, kernel_h, span, panel, out_c, bias, act, output, n); break;
  }
}

// The lambdas below pass only pointers and ints: they have no target
// attribute, so no vector value may cross them.
FEATX_TARGET_AVX2 inline void conv2d(const ConvGeometry& g, const float* input,
                                     const float* weights, const float* bias, Activation act,
                                     float* output, int row_begin, int row_end) {
  constexpr int kMR = kPointwiseMR, kNR = kPointwiseNR;
  const int depth = g.kernel_h * g.kernel_w * g.in_c;
  if (depth > kIm2colMaxDepth) {  // not MobileNetV2's stem: use the reference
    conv2d_ref(g, input, weights, bias, act, output, row_begin, row_end);
    return;
  }
  const int span = g.kernel_w * g.in_c;
  const size_t pixel_step = size_t(g.stride) * size_t(g.in_c), row_step = size_t(g.in_w) * size_t(g.in_c);
  const ColumnRange inner_columns = interior_columns(g);
  alignas(64) float patches[kMR * kIm2colMaxDepth];
  for (int oy = row_begin; oy < row_end; ++oy) {
    const int iy0 = oy * g.stride - g.pad_top;
    const bool rows_inside = iy0 >= 0 && iy0 + g.kernel_h <= g.in_h;
    const ColumnRange inner = rows_inside ? inner_columns : ColumnRange{g.out_w, g.out_w};
    float* out_row = output + size_t(oy) * g.out_w * g.out_c;
    auto gathered = [&](int begin, int end) {
      for (int ox0 = begin; ox0 < end; ox0 += kMR) {
        const int m = end - ox0 < kMR ? end - ox0 : kMR;
        im2col_pixels(g, input, oy, ox0, m, patches);
        for (int n0 = 0; n0 < g.out_c; n0 += kNR)
          pointwise_rows(m, patches, depth, packed_panel(weights, depth, n0), g.out_c, bias + n0,
                         act, nullptr, out_row + size_t(ox0) * g.out_c + n0,
                         g.out_c - n0 < kNR ? g.out_c - n0 : kNR);
      }
    };
    gathered(0, inner.begin);
    const float* row_origin = input + size_t(iy0 < 0 ? 0 : iy0) * row_step;
    for_each_gemm_tile<kMR, kNR>(
        size_t(inner.begin), size_t(inner.end), 0, g.out_c, [&](size_t ox, int m, int n0, int n) {
          conv_direct_rows(m, row_origin + size_t(int(ox) * g.stride - g.pad_left) * g.in_c,
                           pixel_step, row_step, g.kernel_h, span,
                           packed_panel(weights, depth, n0), g.out_c, bias + n0, act,
                           out_row + ox * size_t(g.out_c) + n0, n);
        });
    gathered(inner.end, g.out_w);
  }
}

}  // namespace avx2
}  // namespace featx

#endif  // FEATX_HAVE_X86_SIMD
