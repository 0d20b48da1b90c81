// featx/kernels/pointwise_pairs_avx512.hpp: 1x1 convolution, AVX-512, for a
// tile of 8 or 24 channels: two pixels' channels packed into n / 8 vectors.
//
// The 12 x 32 tile (pointwise_avx512.hpp) spends 8 of its 32 lanes on zero
// padding when n = 24 (the project convs to 24 channels at 56x56, the
// 24-wide tails of widths 0.35 / 1.4) and 8 of 16 when n = 8: those layers
// ran at 68% of the FMA peak, the others at 85-96%. Here pixels go in pairs
// (p, q), every lane useful:
//   n = 24: [p 0-15] [p 16-23 | q 0-7] [q 8-23]     n = 8: [p 0-7 | q 0-7]
// The weight vectors are the packed panels' rows rearranged by 128-bit
// shuffles once per k for all pairs (no new packing); the mixed vector's
// input is p's broadcast blended with q's. Each output is still the bias
// (or the stored value), one FMA per k in order, then the residual and the
// activation, as in the tile: the same bits (tested). Zen 5, 1 thread:
// the 96->24 and 144->24 project convs at 56x56 take 0.80x the tile's time.
// n = 8 is no faster: a pair still needs two input broadcasts per
// FMA, so loads, not FMA lanes, bound it in both tiles (within noise).
#pragma once

#include <cstddef>

#include "featx/kernels/activation.hpp"
#include "featx/kernels/isa.hpp"
#include "featx/kernels/packed_weights.hpp"
#include "featx/kernels/vector_avx512.hpp"

#ifdef FEATX_HAVE_X86_SIMD

// GCC 12's intrinsics pass an intentionally undefined operand
// (_mm512_undefined_ps): maybe-uninitialized in its shuffles, uninitialized
// in its max / min here. The warnings are about the header, not us.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)  // a GCC-only warning; clang would warn that it does not know it
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace featx {
namespace avx512 {

// True when a tile of n channels (and at least 2 pixels) goes in pairs.
inline bool pairs_handle(int n) { return n == 8 || n == 24; }

// At most 6 pairs (MR = 12 pixels): 18 accumulators + 3 weights + 3 inputs
// of the 32 zmm registers for n = 24.
constexpr int kPairsMax = 6;

// _mm512_shuffle_f32x4 selectors (128-bit quarters: two from the first
// operand, two from the second): (a.0, a.1, b.0, b.1) and (a.2, a.3, b.0, b.1).
constexpr int kLowHalves = 0x44, kHighThenLow = 0x4E;
constexpr __mmask16 kLow8 = 0x00FF, kHigh8 = 0xFF00;

// One pair's NV = n / 8 vectors from rows p (at row) and q (out_c floats
// on). q's channels 0-7 go to lanes 8-15 through a masked access at
// q - 8: masked-off lanes never fault, and q - 8 is inside p's row or
// after it (out_c >= n).
template <int NV>
FEATX_TARGET_AVX512 __attribute__((always_inline)) inline void load_pair(const float* row, size_t out_c,
                                                                         __m512 (&v)[NV]) {
  const float* q = row + out_c;
  if constexpr (NV == 3) {
    v[0] = _mm512_loadu_ps(row);
    v[1] = _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(kLow8, row + 16), kHigh8, q - 8);
    v[2] = _mm512_loadu_ps(q + 8);
  } else {
    v[0] = _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(kLow8, row), kHigh8, q - 8);
  }
}

template <int NV>
FEATX_TARGET_AVX512 __attribute__((always_inline)) inline void store_pair(float* row, size_t out_c,
                                                                          const __m512 (&v)[NV]) {
  float* q = row + out_c;
  if constexpr (NV == 3) {
    _mm512_storeu_ps(row, v[0]);
    _mm512_mask_storeu_ps(row + 16, kLow8, v[1]);
    _mm512_mask_storeu_ps(q - 8, kHigh8, v[1]);
    _mm512_storeu_ps(q + 8, v[2]);
  } else {
    _mm512_mask_storeu_ps(row, kLow8, v[0]);
    _mm512_mask_storeu_ps(q - 8, kHigh8, v[0]);
  }
}

// The k loops: acc[j] += input(pixels 2j, 2j+1; k) * weights(k), k in order.
// n = 24: panels 0 and 1 (channels 16-23 of it; the rest is zero padding).
template <int P>
FEATX_TARGET_AVX512 __attribute__((always_inline)) inline void pairs_k24(__m512 (&acc)[P][3], const float* input,
                                                                         int in_c, const float* panel) {
  const size_t in_stride = size_t(in_c), second = size_t(in_c) * kPanelWidth;
  const float* w = panel;
  for (int k = 0; k < in_c; ++k, w += kPanelWidth) {
    const __m512 p0 = _mm512_loadu_ps(w), p1 = _mm512_loadu_ps(w + second);
    const __m512 w1 = _mm512_shuffle_f32x4(p1, p0, kLowHalves);    // 16-23 | 0-7
    const __m512 w2 = _mm512_shuffle_f32x4(p0, p1, kHighThenLow);  // 8-15 | 16-23
#pragma GCC unroll 6
    for (int j = 0; j < P; ++j) {
      const float* x = input + size_t(2 * j) * in_stride + size_t(k);
      __m512 a = _mm512_set1_ps(x[0]), b = _mm512_set1_ps(x[in_stride]);
      // Both broadcasts in registers: GCC otherwise turns the blend into a
      // masked broadcast and loads q's input twice (21 loads per k for 18
      // FMAs, more than the load ports issue: 1.1x the 12 x 32 tile, not 1.3x).
      __asm__("" : "+v"(a), "+v"(b));
      const __m512 ab = _mm512_mask_blend_ps(kHigh8, a, b);
      acc[j][0] = _mm512_fmadd_ps(a, p0, acc[j][0]);
      acc[j][1] = _mm512_fmadd_ps(ab, w1, acc[j][1]);
      acc[j][2] = _mm512_fmadd_ps(b, w2, acc[j][2]);
    }
  }
}

// n = 8: panel 0's channels 0-7 in both halves; only panel 0 exists.
template <int P>
FEATX_TARGET_AVX512 __attribute__((always_inline)) inline void pairs_k8(__m512 (&acc)[P][1], const float* input,
                                                                        int in_c, const float* panel) {
  const size_t in_stride = size_t(in_c);
  const float* w = panel;
  for (int k = 0; k < in_c; ++k, w += kPanelWidth) {
    const __m512 p0 = _mm512_loadu_ps(w);
    const __m512 w0 = _mm512_shuffle_f32x4(p0, p0, kLowHalves);  // 0-7 | 0-7
#pragma GCC unroll 6
    for (int j = 0; j < P; ++j) {
      const float* x = input + size_t(2 * j) * in_stride + size_t(k);
      acc[j][0] = _mm512_fmadd_ps(_mm512_mask_blend_ps(kHigh8, _mm512_set1_ps(x[0]), _mm512_set1_ps(x[in_stride])), w0,
                                  acc[j][0]);
    }
  }
}

// P pairs (pixels 0..2P-1) x n = 8 * NV channels. panel: the packed panel
// of the tile's first channel; input, bias, residual and output point at
// the first pixel and channel, as for pointwise_tile. bias null continues
// the chains stored in output (K chunks), loaded in the same arrangement.
template <int P, int NV, Activation kAct, bool kResidual>
FEATX_TARGET_AVX512 inline void pair_tile(const float* input, int in_c, const float* panel,
                                          int out_c, const float* bias, const float* residual,
                                          float* output) {
  static_assert(NV == 1 || NV == 3, "n = 8 or 24");
  const size_t stride = size_t(out_c), pair_stride = 2 * stride;
  __m512 acc[P][NV];
  if (bias) {
    __m512 b[NV];
    if constexpr (NV == 3) {
      b[0] = _mm512_loadu_ps(bias);
      b[2] = _mm512_loadu_ps(bias + 8);
      b[1] = _mm512_shuffle_f32x4(b[2], b[0], kHighThenLow);  // bias 16-23 | 0-7
    } else {
      const __m512 low = _mm512_maskz_loadu_ps(kLow8, bias);
      b[0] = _mm512_shuffle_f32x4(low, low, kLowHalves);
    }
#pragma GCC unroll 6
    for (int j = 0; j < P; ++j)
#pragma GCC unroll 3
      for (int v = 0; v < NV; ++v) acc[j][v] = b[v];
  } else {
#pragma GCC unroll 6
    for (int j = 0; j < P; ++j) load_pair<NV>(output + size_t(j) * pair_stride, stride, acc[j]);
  }
  if constexpr (NV == 3) pairs_k24<P>(acc, input, in_c, panel);
  else pairs_k8<P>(acc, input, in_c, panel);
  // Epilogue as store_tile: residual added, then the activation.
#pragma GCC unroll 6
  for (int j = 0; j < P; ++j) {
    __m512 x[NV];
    if constexpr (kResidual) load_pair<NV>(residual + size_t(j) * pair_stride, stride, x);
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v)
      x[v] = activate(kResidual ? _mm512_add_ps(acc[j][v], x[v]) : acc[j][v], kAct);
    store_pair<NV>(output + size_t(j) * pair_stride, stride, x);
  }
}

template <int P, int NV>
FEATX_TARGET_AVX512 inline void pair_tile(const float* input, int in_c, const float* panel,
                                          int out_c, const float* bias, Activation act,
                                          const float* residual, float* output) {
  using Fn = void (*)(const float*, int, const float*, int, const float*, const float*, float*);
  constexpr Fn kTiles[2][3] = {
      {pair_tile<P, NV, Activation::none, false>, pair_tile<P, NV, Activation::relu6, false>,
       pair_tile<P, NV, Activation::relu, false>},
      {pair_tile<P, NV, Activation::none, true>, pair_tile<P, NV, Activation::relu6, true>,
       pair_tile<P, NV, Activation::relu, true>}};
  static_assert(int(Activation::none) == 0 && int(Activation::relu6) == 1 && int(Activation::relu) == 2,
                "kTiles follows the enum");
  kTiles[residual ? 1 : 0][int(act)](input, in_c, panel, out_c, bias, residual, output);
}

// pairs (1..P) pairs, the first 2 * pairs pixels; n: 8 or 24.
template <int P = kPairsMax>
FEATX_TARGET_AVX512 inline void pointwise_pairs(int pairs, const float* input, int in_c,
                                                const float* panel, int out_c, const float* bias,
                                                Activation act, const float* residual,
                                                float* output, int n) {
  if constexpr (P > 1) {
    if (pairs < P) {
      pointwise_pairs<P - 1>(pairs, input, in_c, panel, out_c, bias, act, residual, output, n);
      return;
    }
  }
  if (n == 24) pair_tile<P, 3>(input, in_c, panel, out_c, bias, act, residual, output);
  else pair_tile<P, 1>(input, in_c, panel, out_c, bias, act, residual, output);
}

}  // namespace avx512
}  // namespace featx

#pragma GCC diagnostic pop

#endif  // FEATX_HAVE_X86_SIMD
