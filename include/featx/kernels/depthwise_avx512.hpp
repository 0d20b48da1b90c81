// featx/kernels/depthwise_avx512.hpp: depthwise KxK convolution, AVX-512,
// 16 channels per vector, fused bias and activation, TF SAME padding.
//
// For 3x3 with stride 1 or 2 (every MobileNetV2 depthwise layer) interior
// pixels go in runs of 8 (stride 1, and stride 2 in row pairs) or 4 (a lone
// stride-2 row) with one accumulator each, so the FMA chains overlap
// instead of waiting on each other, and each input vector loaded serves up
// to three neighbours. Only
// the padded border pixels check their taps one by one. Every output is
// the bias, then its taps in (ky, kx) order with padding skipped, exactly as
// depthwise_ref and the other ISAs; channel tails are masked.
#pragma once

#include "featx/kernels/conv_interior.hpp"
#include "featx/kernels/depthwise3x3_rows.hpp"
#include "featx/kernels/conv_ref.hpp"
#include "featx/kernels/pointer_walk.hpp"
#include "featx/kernels/pointwise_avx512.hpp"

#ifdef FEATX_HAVE_X86_SIMD

// GCC 12 warns inside its own _mm512_maskz_loadu_ps (an intentionally
// undefined pass-through operand); the warning is about the header, not us.
#pragma GCC diagnostic push
#if !defined(__clang__)  // a GCC-only warning; clang would warn that it does not know it
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace featx {
namespace avx512 {

// One 16-channel block of NP consecutive output pixels of one row. Only
// the taps in window rows [KY0, KY1) and columns [KX0, KX1) are inside the
// input; the others are skipped (compile-time, so the loop has no
// branches). window: the input at row KY0 and the first column loaded
// (KX0 for a lone border pixel, else 0) of the first pixel's window;
// weights, bias and out at the block's first channel. Addresses are
// formed for taps inside the input only.
template <int NP, int S, int KY0, int KY1, int KX0, int KX1, bool kTail>
FEATX_TARGET_AVX512 __attribute__((always_inline)) inline void depthwise3x3_run_block(
    const float* window, ptrdiff_t channels, ptrdiff_t row_stride, const float* weights,
    const float* bias, __mmask16 mask, Activation act, float* out) {
  constexpr int kCols = (NP - 1) * S + 3;
  constexpr int kFirst = NP > 1 ? 0 : KX0, kEnd = NP > 1 ? kCols : KX1;  // columns loaded
  __m512 acc[NP], w[9];
  const __m512 b = load_block<kTail>(bias, mask);
#pragma GCC unroll 8
  for (int j = 0; j < NP; ++j) acc[j] = b;
#pragma GCC unroll 9
  for (int t = 0; t < 9; ++t) {
    if (t / 3 >= KY0 && t / 3 < KY1 && t % 3 >= KX0 && t % 3 < KX1) w[t] = load_block<kTail>(weights, mask);
    if (t < 8) advance(weights, channels);
  }
#pragma GCC unroll 3
  for (int ky = KY0; ky < KY1; ++ky) {
    __m512 x[kCols];
    const float* column = window;
#pragma GCC unroll 17
    for (int i = kFirst; i < kEnd; ++i) {
      x[i] = load_block<kTail>(column, mask);
      if (i + 1 < kEnd) advance(column, channels);
    }
#pragma GCC unroll 3
    for (int kx = KX0; kx < KX1; ++kx)
#pragma GCC unroll 8
      for (int j = 0; j < NP; ++j) acc[j] = _mm512_fmadd_ps(x[j * S + kx], w[ky * 3 + kx], acc[j]);
    if (ky + 1 < KY1) advance(window, row_stride);
  }
#pragma GCC unroll 8
  for (int j = 0; j < NP; ++j) {
    store_block<kTail>(out, mask, activate(acc[j], act));
    if (j + 1 < NP) advance(out, channels);
  }
}

// NP consecutive output pixels of one row, every channel (see
// depthwise3x3_run_block). iy0, ix0: the window's first row and the first
// pixel's first column. Whole 16-channel blocks run unmasked, the tail
// masked.
template <int NP, int S, int KY0, int KY1, int KX0, int KX1>
FEATX_TARGET_AVX512 inline void depthwise3x3_run(const ConvGeometry& g, const float* input,
                                                 int iy0, int ix0, const float* weights,
                                                 const float* bias, Activation act, float* out) {
  constexpr int kFirst = NP > 1 ? 0 : KX0;
  const ptrdiff_t channels = g.out_c, row_stride = ptrdiff_t(g.in_w) * channels;
  const float* window = input + ptrdiff_t(iy0 + KY0) * row_stride + ptrdiff_t(ix0 + kFirst) * channels;
  ptrdiff_t c0 = 0;
  for (; c0 + 16 <= channels; c0 += 16)
    depthwise3x3_run_block<NP, S, KY0, KY1, KX0, KX1, false>(
        window + c0, channels, row_stride, weights + c0, bias + c0, __mmask16(0xFFFF), act, out + c0);
  if (c0 < channels)
    depthwise3x3_run_block<NP, S, KY0, KY1, KX0, KX1, true>(
        window + c0, channels, row_stride, weights + c0, bias + c0, tail_mask(int(channels - c0)),
        act, out + c0);
}

// One 16-channel block of NP interior pixels of two consecutive output rows
// (stride S = 1 or 2) whose windows are whole. window: the first row's
// window at the first pixel's first column and the block's first channel.
// Input rows are streamed a column at a time: input row r feeds the first
// output row with tap row r and the second with r - S, so each vector
// loaded from the rows both windows share serves both (S + 3 input rows
// for 2 output rows, not 6). 2 x NP accumulators + 9 weights + 1 input: 26
// of the 32 registers at NP = 8. Each pixel still gets its taps in
// (ky, kx) order: the same FMA chain as depthwise3x3_run.
template <int NP, int S, bool kTail>
FEATX_TARGET_AVX512 __attribute__((always_inline)) inline void depthwise3x3_pair_block(
    const float* window, ptrdiff_t channels, ptrdiff_t row_stride, const float* weights,
    const float* bias, __mmask16 mask, Activation act, float* out0, float* out1) {
  constexpr int kCols = (NP - 1) * S + 3, kRows = S + 3;
  __m512 acc0[NP], acc1[NP], w[9];
  const __m512 b = load_block<kTail>(bias, mask);
#pragma GCC unroll 8
  for (int j = 0; j < NP; ++j) acc0[j] = b, acc1[j] = b;
#pragma GCC unroll 9
  for (int t = 0; t < 9; ++t) {
    w[t] = load_block<kTail>(weights, mask);
    if (t < 8) advance(weights, channels);
  }
#pragma GCC unroll 5
  for (int r = 0; r < kRows; ++r) {
    const float* column = window;
#pragma GCC unroll 17
    for (int i = 0; i < kCols; ++i) {
      const __m512 x = load_block<kTail>(column, mask);
      if (i + 1 < kCols) advance(column, channels);
#pragma GCC unroll 8
      for (int j = 0; j < NP; ++j) {
        const int kx = i - j * S;
        if (kx < 0 || kx > 2) continue;
        if (r < 3) acc0[j] = _mm512_fmadd_ps(x, w[r * 3 + kx], acc0[j]);
        if (r >= S) acc1[j] = _mm512_fmadd_ps(x, w[(r - S) * 3 + kx], acc1[j]);
      }
    }
    if (r + 1 < kRows) advance(window, row_stride);
  }
#pragma GCC unroll 8
  for (int j = 0; j < NP; ++j) {
    store_block<kTail>(out0, mask, activate(acc0[j], act));
    store_block<kTail>(out1, mask, activate(acc1[j], act));
    if (j + 1 < NP) advance(out0, channels), advance(out1, channels);
  }
}

// NP interior pixels of two consecutive stride-S rows, every channel.
// iy0: the first row's window row; ix0: the first pixel's first column.
template <int NP, int S>
FEATX_TARGET_AVX512 inline void depthwise3x3_run_pair(const ConvGeometry& g, const float* input,
                                                      int iy0, int ix0, const float* weights,
                                                      const float* bias, Activation act,
                                                      float* out0, float* out1) {
  const ptrdiff_t channels = g.out_c, row_stride = ptrdiff_t(g.in_w) * channels;
  const float* window = input + ptrdiff_t(iy0) * row_stride + ptrdiff_t(ix0) * channels;
  ptrdiff_t c0 = 0;
  for (; c0 + 16 <= channels; c0 += 16)
    depthwise3x3_pair_block<NP, S, false>(window + c0, channels, row_stride, weights + c0, bias + c0,
                                          __mmask16(0xFFFF), act, out0 + c0, out1 + c0);
  if (c0 < channels)
    depthwise3x3_pair_block<NP, S, true>(window + c0, channels, row_stride, weights + c0, bias + c0,
                                         tail_mask(int(channels - c0)), act, out0 + c0, out1 + c0);
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

// The per-pixel fallback: any kernel size, every tap checked.
FEATX_TARGET_AVX512 inline void depthwise_pixel_row(const ConvGeometry& g, const float* input,
                                                      const float* weights, const float* bias,
                                                      Activation act, float* out_row, int oy) {
  const int channels = g.out_c;
  for (int c0 = 0; c0 < channels; c0 += 16) {
    const __mmask16 mask = tail_mask(channels - c0);
    for (int ox = 0; ox < g.out_w; ++ox)
      depthwise_pixel(g, input + c0, oy, ox, weights + c0, bias + c0, mask, act,
                      out_row + size_t(ox) * channels + c0);
  }
}

// This ISA's kernels for the shared row walk (depthwise3x3_rows.hpp).
struct Depthwise3x3 {
  static constexpr bool kPairRows = true;
  template <int NP, int S>
  FEATX_TARGET_AVX512 static void run_pair(const ConvGeometry& g, const float* input, int iy0,
                                           int ix0, const float* weights, const float* bias,
                                           Activation act, float* out0, float* out1) {
    depthwise3x3_run_pair<NP, S>(g, input, iy0, ix0, weights, bias, act, out0, out1);
  }
  template <int NP, int S, int KY0, int KY1, int KX0, int KX1>
  FEATX_TARGET_AVX512 static void run(const ConvGeometry& g, const float* input, int iy0, int ix0,
                                  const float* weights, const float* bias, Activation act,
                                  float* out) {
    depthwise3x3_run<NP, S, KY0, KY1, KX0, KX1>(g, input, iy0, ix0, weights, bias, act, out);
  }
  FEATX_TARGET_AVX512 static void pixel_row(const ConvGeometry& g, const float* input,
                                        const float* weights, const float* bias, Activation act,
                                        float* out_row, int oy) {
    depthwise_pixel_row(g, input, weights, bias, act, out_row, oy);
  }
};

inline void depthwise(const ConvGeometry& g, const float* input, const float* weights,
                      const float* bias, Activation act, float* output, int row_begin,
                      int row_end) {
  depthwise_rows<Depthwise3x3>(g, input, weights, bias, act, output, row_begin, row_end);
}

}  // namespace avx512
}  // namespace featx

#pragma GCC diagnostic pop

#endif  // FEATX_HAVE_X86_SIMD
