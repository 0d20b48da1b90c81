// featx/kernels/conv_avx512.hpp: full KxK convolution (the 3x3 stride-2 stem),
// AVX-512, on the 12x32 register tile of pointwise_avx512.
//
// The walk (interior pixels read from the image, border pixels through an
// im2col patch) is conv_tiled.hpp; this file has the direct tile: the k
// loop of the 1x1 tile with its inputs broadcast from the window rows.
#pragma once

#include "featx/kernels/conv_ref.hpp"
#include "featx/kernels/conv_tiled.hpp"
#include "featx/kernels/pointwise_avx512.hpp"

#ifdef FEATX_HAVE_X86_SIMD

#pragma GCC diagnostic push
#if !defined(__clang__)  // a GCC-only warning; clang would warn that it does not know it
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace featx {
namespace avx512 {

// MR interior pixels x n (1..32) channels. origin: the first pixel's window
// corner; pixel_step / row_step: floats to the next pixel's window / the
// next kernel row; span = kw * in floats per kernel row.
// NV = 2 reads two panels (n > 16), NV = 1 only the first: a second panel
// may not exist past the last channel, and reading past the weights would
// be out of bounds (and may meet denormals, which cost microcode assists).
template <int MR, int NV>
FEATX_TARGET_AVX512 inline void conv_direct_tile(const float* origin, size_t pixel_step,
                                                 size_t row_step, int kernel_h, int span,
                                                 const float* panel, int out_c,
                                                 const float* bias, Activation act,
                                                 float* output, int n) {
  const __mmask16 mask[2] = {tail_mask(n), tail_mask(n - 16)};
  const size_t second = size_t(kernel_h) * size_t(span) * kPanelWidth;
  __m512 acc[MR][NV];
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    const __m512 b = _mm512_maskz_loadu_ps(mask[v], bias + 16 * v);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) acc[r][v] = b;
  }
  const float* w = panel;
  for (int ky = 0; ky < kernel_h; ++ky) {
    const float* src = origin + size_t(ky) * row_step;
    for (int i = 0; i < span; ++i, w += kPanelWidth) {
      __m512 wv[NV];
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) wv[v] = _mm512_loadu_ps(w + second * size_t(v));
#pragma GCC unroll 12
      for (int r = 0; r < MR; ++r) {
        const __m512 a = _mm512_set1_ps(src[size_t(r) * pixel_step + size_t(i)]);
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(a, wv[v], acc[r][v]);
      }
    }
  }
  store_tile<MR, NV, false>(acc, mask, act, nullptr, output, out_c);
}

template <int MR = kPointwiseMR>
FEATX_TARGET_AVX512 inline void conv_direct_rows(int m, const float* origin, size_t pixel_step,
                                                 size_t row_step, int kernel_h, int span,
                                                 const float* panel, int out_c,
                                                 const float* bias, Activation act,
                                                 float* output, int n) {
  if constexpr (MR > 1) {
    if (m < MR) {
      conv_direct_rows<MR - 1>(m, origin, pixel_step, row_step, kernel_h, span, panel, out_c,
                               bias, act, output, n);
      return;
    }
  }
  if (n > 16)
    conv_direct_tile<MR, 2>(origin, pixel_step, row_step, kernel_h, span, panel, out_c, bias, act,
                            output, n);
  else
    conv_direct_tile<MR, 1>(origin, pixel_step, row_step, kernel_h, span, panel, out_c, bias, act,
                            output, n);
}

inline void conv2d(const ConvGeometry& g, const float* input, const float* weights,
                   const float* bias, Activation act, float* output, int row_begin, int row_end) {
  conv2d_tiled<kPointwiseMR, kPointwiseNR>(g, input, weights, bias, act, output, row_begin,
                                           row_end, pointwise_rows<>, conv_direct_rows<>);
}

}  // namespace avx512
}  // namespace featx

#pragma GCC diagnostic pop

#endif  // FEATX_HAVE_X86_SIMD
