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

// NP consecutive output pixels of one row, every channel. Only the taps in
// window rows [KY0, KY1) and columns [KX0, KX1) are inside the input; the
// others are skipped (compile-time, so the channel loop has no branches).
// iy0, ix0: the window's first row and the first pixel's first column;
// addresses are formed for taps inside the input only.
template <int NP, int S, int KY0, int KY1, int KX0, int KX1>
FEATX_TARGET_AVX512 inline void depthwise3x3_run(const ConvGeometry& g, const float* input,
                                                 int iy0, int ix0, const float* weights,
                                                 const float* bias, Activation act, float* out) {
  constexpr int kCols = (NP - 1) * S + 3;
  const int channels = g.out_c;
  for (int c0 = 0; c0 < channels; c0 += 16) {
    const __mmask16 mask = tail_mask(channels - c0);
    __m512 acc[NP];
    const __m512 b = _mm512_maskz_loadu_ps(mask, bias + c0);
#pragma GCC unroll 8
    for (int j = 0; j < NP; ++j) acc[j] = b;
#pragma GCC unroll 3
    for (int ky = KY0; ky < KY1; ++ky) {
      const float* row = input + (size_t(iy0 + ky) * size_t(g.in_w)) * size_t(channels) + c0;
      __m512 x[kCols];
#pragma GCC unroll 17
      for (int i = 0; i < kCols; ++i)
        if (NP > 1 || (i >= KX0 && i < KX1))
          x[i] = _mm512_maskz_loadu_ps(mask, row + ptrdiff_t(ix0 + i) * channels);
#pragma GCC unroll 3
      for (int kx = KX0; kx < KX1; ++kx) {
        const __m512 w = _mm512_maskz_loadu_ps(mask, weights + size_t(ky * 3 + kx) * channels + c0);
#pragma GCC unroll 8
        for (int j = 0; j < NP; ++j) acc[j] = _mm512_fmadd_ps(x[j * S + kx], w, acc[j]);
      }
    }
#pragma GCC unroll 8
    for (int j = 0; j < NP; ++j)
      _mm512_mask_storeu_ps(out + size_t(j) * channels + c0, mask, activate(acc[j], act));
  }
}

// One output pixel of any KxK window with its taps checked (not MobileNetV2).
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

// One output row of a 3x3 depthwise conv with stride S whose window rows
// [KY0, KY1) are inside the input: the border pixels with their columns
// clipped, the interior in runs of up to 8 (stride 1) or 4 (stride 2)
// pixels spread evenly (54 = 5 x 8 + 2 x 7, not 6 x 8 + 6 x 1: a lone
// pixel is one FMA chain that waits on itself). Channels are the inner
// loop: a run reads its pixels' channels front to back (sequential lines
// the prefetcher follows), weights stay in L1.
template <int S, int KY0, int KY1>
FEATX_TARGET_AVX512 inline void depthwise3x3_row(const ConvGeometry& g, const float* input,
                                                 const float* weights, const float* bias,
                                                 Activation act, float* out_row, int oy,
                                                 ColumnRange inner) {
  constexpr int kRun = S == 1 ? 8 : 4;
  const int iy0 = oy * S - g.pad_top;
  const size_t pixel = size_t(g.out_c);
  auto border = [&](int ox) {
    const int ix0 = ox * S - g.pad_left;
    const int kx0 = ix0 < 0 ? -ix0 : 0, kx1 = g.in_w - ix0 < 3 ? g.in_w - ix0 : 3;
    float* out = out_row + size_t(ox) * pixel;
    if (kx0 == 1 && kx1 == 3) depthwise3x3_run<1, S, KY0, KY1, 1, 3>(g, input, iy0, ix0, weights, bias, act, out);
    else if (kx0 == 0 && kx1 == 2) depthwise3x3_run<1, S, KY0, KY1, 0, 2>(g, input, iy0, ix0, weights, bias, act, out);
    else if (kx0 == 1 && kx1 == 2) depthwise3x3_run<1, S, KY0, KY1, 1, 2>(g, input, iy0, ix0, weights, bias, act, out);
    else if (kx0 == 0 && kx1 == 1) depthwise3x3_run<1, S, KY0, KY1, 0, 1>(g, input, iy0, ix0, weights, bias, act, out);
    else depthwise3x3_run<1, S, KY0, KY1, 2, 3>(g, input, iy0, ix0, weights, bias, act, out);  // kx0 == 2
  };
  for (int ox = 0; ox < inner.begin; ++ox) border(ox);
  const int count = inner.end - inner.begin, runs = (count + kRun - 1) / kRun;
  for (int r = 0; r < runs; ++r) {
    const int ox = inner.begin + count * r / runs, np = inner.begin + count * (r + 1) / runs - ox;
    const int ix0 = ox * S - g.pad_left;
    float* out = out_row + size_t(ox) * pixel;
    switch (np) {
      case 8: depthwise3x3_run<8, S, KY0, KY1, 0, 3>(g, input, iy0, ix0, weights, bias, act, out); break;
      case 7: depthwise3x3_run<7, S, KY0, KY1, 0, 3>(g, input, iy0, ix0, weights, bias, act, out); break;
      case 6: depthwise3x3_run<6, S, KY0, KY1, 0, 3>(g, input, iy0, ix0, weights, bias, act, out); break;
      case 5: depthwise3x3_run<5, S, KY0, KY1, 0, 3>(g, input, iy0, ix0, weights, bias, act, out); break;
      case 4: depthwise3x3_run<4, S, KY0, KY1, 0, 3>(g, input, iy0, ix0, weights, bias, act, out); break;
      case 3: depthwise3x3_run<3, S, KY0, KY1, 0, 3>(g, input, iy0, ix0, weights, bias, act, out); break;
      case 2: depthwise3x3_run<2, S, KY0, KY1, 0, 3>(g, input, iy0, ix0, weights, bias, act, out); break;
      default: depthwise3x3_run<1, S, KY0, KY1, 0, 3>(g, input, iy0, ix0, weights, bias, act, out); break;
    }
  }
  for (int ox = inner.end; ox < g.out_w; ++ox) border(ox);
}

// Row oy with its window rows clipped at compile time; false when the clip
// is not one of the three a 3-row window has in an image of 3+ rows.
template <int S>
FEATX_TARGET_AVX512 inline bool depthwise3x3_any_row(const ConvGeometry& g, const float* input,
                                                     const float* weights, const float* bias,
                                                     Activation act, float* out_row, int oy,
                                                     ColumnRange inner) {
  const TapRange rows = inside_rows(g, oy);
  if (rows.begin == 0 && rows.end == 3)
    depthwise3x3_row<S, 0, 3>(g, input, weights, bias, act, out_row, oy, inner);
  else if (rows.begin == 1 && rows.end == 3)
    depthwise3x3_row<S, 1, 3>(g, input, weights, bias, act, out_row, oy, inner);
  else if (rows.begin == 0 && rows.end == 2)
    depthwise3x3_row<S, 0, 2>(g, input, weights, bias, act, out_row, oy, inner);
  else
    return false;
  return true;
}

FEATX_TARGET_AVX512 inline void depthwise(const ConvGeometry& g, const float* input,
                                          const float* weights, const float* bias,
                                          Activation act, float* output, int row_begin,
                                          int row_end) {
  const int channels = g.out_c;
  const bool fast = g.kernel_h == 3 && g.kernel_w == 3 && (g.stride == 1 || g.stride == 2) &&
                    g.in_w >= 3;
  const ColumnRange inner = fast ? interior_columns(g) : ColumnRange{};
  for (int oy = row_begin; oy < row_end; ++oy) {
    float* out_row = output + size_t(oy) * g.out_w * channels;
    const bool done =
        fast && (g.stride == 1 ? depthwise3x3_any_row<1>(g, input, weights, bias, act, out_row, oy, inner)
                               : depthwise3x3_any_row<2>(g, input, weights, bias, act, out_row, oy, inner));
    if (!done) {
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
