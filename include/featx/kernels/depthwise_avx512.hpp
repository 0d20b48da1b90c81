// featx/kernels/depthwise_avx512.hpp: depthwise KxK convolution, AVX-512,
// 16 channels per vector, fused bias and activation, TF SAME padding.
//
// For 3x3 with stride 1 or 2 (every MobileNetV2 depthwise layer) interior
// pixels go in runs of 8 (stride 1) or 4 (stride 2) with one accumulator
// each, so the FMA chains overlap instead of waiting on each other, and
// each input vector loaded serves up to three neighbours. Only
// the padded border pixels check their taps one by one. Every output is
// the bias, then its taps in (ky, kx) order with padding skipped, exactly as
// depthwise_ref and the other ISAs; channel tails are masked.
#pragma once

#include "featx/kernels/conv_interior.hpp"
#include "featx/kernels/conv_ref.hpp"
#include "featx/kernels/pointwise_avx512.hpp"

#ifdef FEATX_HAVE_X86_SIMD

// GCC 12 warns inside its own _mm512_maskz_loadu_ps (an intentionally
// undefined pass-through operand); the warning is about the header, not us.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace featx {
namespace avx512 {

// NP consecutive output pixels whose three tap columns are inside the input,
// for the 16 channels at c0. col: the input at (row 0, the first pixel's
// first tap column, c0); iy0: the window's first row (may be -1, that row
// is then skipped and never addressed); out: the first pixel's output.
template <int NP, int S>
FEATX_TARGET_AVX512 inline void depthwise3x3_run(const float* col, int iy0, size_t in_row,
                                                 int channels, TapRange rows,
                                                 const float* weights_c0, const float* bias_c0,
                                                 __mmask16 mask, Activation act, float* out) {
  constexpr int kCols = (NP - 1) * S + 3;
  __m512 acc[NP];
  const __m512 b = _mm512_maskz_loadu_ps(mask, bias_c0);
#pragma GCC unroll 8
  for (int j = 0; j < NP; ++j) acc[j] = b;
#pragma GCC unroll 3
  for (int ky = 0; ky < 3; ++ky) {
    if (ky < rows.begin || ky >= rows.end) continue;
    const float* row = col + size_t(iy0 + ky) * in_row;
    __m512 x[kCols];
#pragma GCC unroll 17
    for (int i = 0; i < kCols; ++i) x[i] = _mm512_maskz_loadu_ps(mask, row + size_t(i) * channels);
#pragma GCC unroll 3
    for (int kx = 0; kx < 3; ++kx) {
      const __m512 w = _mm512_maskz_loadu_ps(mask, weights_c0 + size_t(ky * 3 + kx) * channels);
#pragma GCC unroll 8
      for (int j = 0; j < NP; ++j) acc[j] = _mm512_fmadd_ps(x[j * S + kx], w, acc[j]);
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < NP; ++j)
    _mm512_mask_storeu_ps(out + size_t(j) * channels, mask, activate(acc[j], act));
}

// One output pixel with its taps checked against the input (the border).
FEATX_TARGET_AVX512 inline void depthwise_pixel(const ConvGeometry& g, const float* input_c0,
                                                int oy, int ox, const float* weights_c0,
                                                const float* bias_c0, __mmask16 mask,
                                                Activation act, float* out) {
  const int iy0 = oy * g.stride - g.pad_top, ix0 = ox * g.stride - g.pad_left;
  const int channels = g.out_c;
  __m512 acc = _mm512_maskz_loadu_ps(mask, bias_c0);
  for (int ky = 0; ky < g.kernel_h; ++ky) {
    const int iy = iy0 + ky;
    if (iy < 0 || iy >= g.in_h) continue;
    for (int kx = 0; kx < g.kernel_w; ++kx) {
      const int ix = ix0 + kx;
      if (ix < 0 || ix >= g.in_w) continue;
      const __m512 wv = _mm512_maskz_loadu_ps(mask, weights_c0 + (size_t(ky) * g.kernel_w + kx) * channels);
      const __m512 xv = _mm512_maskz_loadu_ps(mask, input_c0 + (size_t(iy) * g.in_w + ix) * channels);
      acc = _mm512_fmadd_ps(xv, wv, acc);
    }
  }
  _mm512_mask_storeu_ps(out, mask, activate(acc, act));
}

// One output row. Pixel runs outer, channel groups inner: a run reads its
// input pixels' channels front to back (sequential lines the prefetcher
// follows) and the weights stay in L1.
template <int S>
FEATX_TARGET_AVX512 inline void depthwise3x3_row(const ConvGeometry& g, const float* input,
                                                 const float* weights, const float* bias,
                                                 Activation act, float* out_row, int oy,
                                                 ColumnRange inner) {
  constexpr int kRun = S == 1 ? 8 : 4;
  const int channels = g.out_c;
  const size_t in_row = size_t(g.in_w) * channels;
  const TapRange rows = inside_rows(g, oy);
  const int iy0 = oy * S - g.pad_top;
  auto border = [&](int ox) {  // no vector values cross the lambda's boundary
    for (int c0 = 0; c0 < channels; c0 += 16) {
      const __mmask16 mask = __mmask16(channels - c0 >= 16 ? 0xFFFF : (1u << (channels - c0)) - 1u);
      depthwise_pixel(g, input + c0, oy, ox, weights + c0, bias + c0, mask, act,
                      out_row + size_t(ox) * channels + c0);
    }
  };
  int ox = 0;
  for (; ox < inner.begin; ++ox) border(ox);
  for (; ox + kRun <= inner.end; ox += kRun) {
    const float* col = input + size_t(ox * S - g.pad_left) * channels;
    for (int c0 = 0; c0 < channels; c0 += 16)
      depthwise3x3_run<kRun, S>(col + c0, iy0, in_row, channels, rows, weights + c0, bias + c0,
                                tail_mask(channels - c0), act, out_row + size_t(ox) * channels + c0);
  }
  for (; ox < inner.end; ++ox) {
    const float* col = input + size_t(ox * S - g.pad_left) * channels;
    for (int c0 = 0; c0 < channels; c0 += 16)
      depthwise3x3_run<1, S>(col + c0, iy0, in_row, channels, rows, weights + c0, bias + c0,
                             tail_mask(channels - c0), act, out_row + size_t(ox) * channels + c0);
  }
  for (; ox < g.out_w; ++ox) border(ox);
}

FEATX_TARGET_AVX512 inline void depthwise(const ConvGeometry& g, const float* input,
                                          const float* weights, const float* bias,
                                          Activation act, float* output, int row_begin,
                                          int row_end) {
  const int channels = g.out_c;
  const bool fast = g.kernel_h == 3 && g.kernel_w == 3 && (g.stride == 1 || g.stride == 2);
  const ColumnRange inner = fast ? interior_columns(g) : ColumnRange{};
  for (int oy = row_begin; oy < row_end; ++oy) {
    float* out_row = output + size_t(oy) * g.out_w * channels;
    if (fast && g.stride == 1) {
      depthwise3x3_row<1>(g, input, weights, bias, act, out_row, oy, inner);
    } else if (fast) {
      depthwise3x3_row<2>(g, input, weights, bias, act, out_row, oy, inner);
    } else {
      for (int c0 = 0; c0 < channels; c0 += 16) {
        const __mmask16 mask = tail_mask(channels - c0);
        for (int ox = 0; ox < g.out_w; ++ox)
          depthwise_pixel(g, input + c0, oy, ox, weights + c0, bias + c0, mask, act,
                          out_row + size_t(ox) * channels + c0);
      }
    }
  }
}

}  // namespace avx512
}  // namespace featx

#pragma GCC diagnostic pop

#endif  // FEATX_HAVE_X86_SIMD
