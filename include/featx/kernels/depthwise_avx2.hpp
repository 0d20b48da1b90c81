// featx/kernels/depthwise_avx2.hpp: depthwise KxK convolution, AVX2 + FMA,
// 8 channels per vector, fused bias and activation, TF SAME padding.
//
// Same scheme as depthwise_avx512: for 3x3 with stride 1 or 2 (every
// MobileNetV2 depthwise layer) interior pixels go in runs of 8 (stride 1)
// or 4 (stride 2) with one accumulator each, so the FMA chains overlap
// instead of waiting on each other, and each input vector loaded serves up
// to three neighbours (loaded column by column to fit 16 ymm registers).
// Only the padded border pixels clip their taps, at compile time. Every
// output is the bias, then its taps in (ky, kx) order with padding skipped,
// exactly as depthwise_ref and the other ISAs, so results are bit-identical
// to AVX-512's. Full channel groups use plain loads and stores; only the
// channel tail is masked.
#pragma once

#include "featx/kernels/conv_interior.hpp"
#include "featx/kernels/depthwise3x3_rows.hpp"
#include "featx/kernels/conv_ref.hpp"
#include "featx/kernels/pointwise_avx2.hpp"

#ifdef FEATX_HAVE_X86_SIMD

namespace featx {
namespace avx2 {

// Masked loads and stores cost an extra ALU uop each (vmaskmovps), which
// competes with the FMAs: only the last, partial channel group pays it.
template <bool kMasked>
FEATX_TARGET_AVX2 inline __m256 load8(const float* p, __m256i mask) {
  return kMasked ? _mm256_maskload_ps(p, mask) : _mm256_loadu_ps(p);
}

template <bool kMasked>
FEATX_TARGET_AVX2 inline void store8(float* p, __m256i mask, __m256 v) {
  if (kMasked) _mm256_maskstore_ps(p, mask, v);
  else _mm256_storeu_ps(p, v);
}

// Channels [c0, c0 + 8) of NP consecutive output pixels of one row. Only the
// taps in window rows [KY0, KY1) and columns [KX0, KX1) are inside the
// input; the others are skipped (compile-time, so there are no branches).
// depthwise_avx512 loads a whole row of (NP - 1) * S + 3 inputs before its
// FMAs; here that would need 18 ymm registers for NP = 8. Instead each
// input column is loaded once and fed at once to the pixels whose window
// covers it, with the window row's 3 weights held: NP accumulators + 3
// weights + 1 input (+ the tail mask), 13 registers at most. A pixel still
// gets its taps in (ky, kx) order (column i is its tap kx = i - j * S, and
// i ascends), so its FMA chain is the same as on AVX-512.
template <int NP, int S, int KY0, int KY1, int KX0, int KX1, bool kMasked>
FEATX_TARGET_AVX2 inline void depthwise3x3_group(const ConvGeometry& g, const float* input,
                                                 int iy0, int ix0, const float* weights,
                                                 const float* bias, Activation act, float* out,
                                                 int c0, __m256i mask) {
  constexpr int kCols = (NP - 1) * S + 3;
  const int channels = g.out_c;
  __m256 acc[NP];
  const __m256 b = load8<kMasked>(bias + c0, mask);
#pragma GCC unroll 8
  for (int j = 0; j < NP; ++j) acc[j] = b;
#pragma GCC unroll 3
  for (int ky = KY0; ky < KY1; ++ky) {
    const float* row = input + (size_t(iy0 + ky) * size_t(g.in_w)) * size_t(channels) + c0;
    __m256 w[3];
#pragma GCC unroll 3
    for (int kx = KX0; kx < KX1; ++kx) w[kx] = load8<kMasked>(weights + size_t(ky * 3 + kx) * channels + c0, mask);
#pragma GCC unroll 17
    for (int i = 0; i < kCols; ++i) {
      if (NP == 1 && (i < KX0 || i >= KX1)) continue;  // a clipped border column
      const __m256 x = load8<kMasked>(row + ptrdiff_t(ix0 + i) * channels, mask);
#pragma GCC unroll 8
      for (int j = 0; j < NP; ++j) {
        const int kx = i - j * S;
        if (kx >= KX0 && kx < KX1) acc[j] = _mm256_fmadd_ps(x, w[kx], acc[j]);
      }
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < NP; ++j) store8<kMasked>(out + size_t(j) * channels + c0, mask, activate(acc[j], act));
}

// NP consecutive output pixels of one row, every channel. iy0, ix0: the
// window's first row and the first pixel's first column; addresses are
// formed for taps inside the input only.
template <int NP, int S, int KY0, int KY1, int KX0, int KX1>
FEATX_TARGET_AVX2 inline void depthwise3x3_run(const ConvGeometry& g, const float* input,
                                               int iy0, int ix0, const float* weights,
                                               const float* bias, Activation act, float* out) {
  const int channels = g.out_c, full = channels / 8 * 8;
  const __m256i all = _mm256_set1_epi32(-1);
  for (int c0 = 0; c0 < full; c0 += 8)
    depthwise3x3_group<NP, S, KY0, KY1, KX0, KX1, false>(g, input, iy0, ix0, weights, bias, act, out, c0, all);
  if (full < channels)
    depthwise3x3_group<NP, S, KY0, KY1, KX0, KX1, true>(g, input, iy0, ix0, weights, bias, act, out, full,
                                                        tail_mask(channels - full));
}

// One output pixel of any KxK window with its taps checked (not MobileNetV2).
FEATX_TARGET_AVX2 inline void depthwise_pixel(const ConvGeometry& g, const float* input_c0,
                                              int oy, int ox, const float* weights_c0,
                                              const float* bias_c0, __m256i mask,
                                              Activation act, float* out) {
  const int iy0 = oy * g.stride - g.pad_top, ix0 = ox * g.stride - g.pad_left;
  const int channels = g.out_c;
  __m256 acc = _mm256_maskload_ps(bias_c0, mask);
  for (int ky = 0; ky < g.kernel_h; ++ky) {
    const int iy = iy0 + ky;
    if (iy < 0 || iy >= g.in_h) continue;
    for (int kx = 0; kx < g.kernel_w; ++kx) {
      const int ix = ix0 + kx;
      if (ix < 0 || ix >= g.in_w) continue;
      const __m256 wv = _mm256_maskload_ps(weights_c0 + (size_t(ky) * g.kernel_w + kx) * channels, mask);
      const __m256 xv = _mm256_maskload_ps(input_c0 + (size_t(iy) * g.in_w + ix) * channels, mask);
      acc = _mm256_fmadd_ps(xv, wv, acc);
    }
  }
  _mm256_maskstore_ps(out, mask, activate(acc, act));
}

// The per-pixel fallback: any kernel size, every tap checked.
FEATX_TARGET_AVX2 inline void depthwise_pixel_row(const ConvGeometry& g, const float* input,
                                                    const float* weights, const float* bias,
                                                    Activation act, float* out_row, int oy) {
  const int channels = g.out_c;
  for (int c0 = 0; c0 < channels; c0 += 8) {
    const __m256i mask = tail_mask(channels - c0);
    for (int ox = 0; ox < g.out_w; ++ox)
      depthwise_pixel(g, input + c0, oy, ox, weights + c0, bias + c0, mask, act,
                      out_row + size_t(ox) * channels + c0);
  }
}

// This ISA's kernels for the shared row walk (depthwise3x3_rows.hpp).
struct Depthwise3x3 {
  // Two rows at once would need 2 x 8 accumulators and 9 weights: more
  // than AVX2's 16 registers.
  static constexpr bool kPairRows = false;
  template <int NP, int S, int KY0, int KY1, int KX0, int KX1>
  FEATX_TARGET_AVX2 static void run(const ConvGeometry& g, const float* input, int iy0, int ix0,
                                  const float* weights, const float* bias, Activation act,
                                  float* out) {
    depthwise3x3_run<NP, S, KY0, KY1, KX0, KX1>(g, input, iy0, ix0, weights, bias, act, out);
  }
  FEATX_TARGET_AVX2 static void pixel_row(const ConvGeometry& g, const float* input,
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

}  // namespace avx2
}  // namespace featx

#endif  // FEATX_HAVE_X86_SIMD
