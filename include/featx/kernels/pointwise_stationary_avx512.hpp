// featx/kernels/pointwise_stationary_avx512.hpp: 1x1 convolution with few
// input channels (K = 8, 16 or 24), AVX-512, one weight panel held in
// registers while the pixels stream past.
//
// The expand convs of the first blocks (K = 16 and 24, 14% of a pass) ran
// at about 60% of the FMA peak in the 12 x 32 register tile: each tile
// spends roughly as many cycles outside its short K loop as inside it.
// Here a 16-column panel's K weight vectors are loaded once per call and
// each pixel is one FMA chain over k with the input broadcast from memory;
// P pixels go together so P chains overlap (K + P + 1 <= 32 registers).
// Measured in isolation: 1.1-1.4x the tile on the K = 16 and K = 24 expands.
// Each output is the bias, then one FMA per k in order, exactly as in the
// tile and every other ISA: the same bits (tested).
#pragma once

#include <cstddef>

#include "featx/kernels/activation.hpp"
#include "featx/kernels/isa.hpp"
#include "featx/kernels/packed_weights.hpp"
#include "featx/kernels/vector_avx512.hpp"

#ifdef FEATX_HAVE_X86_SIMD

#pragma GCC diagnostic push
#if !defined(__clang__)  // a GCC-only warning; clang would warn that it does not know it
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace featx {
namespace avx512 {

// True when pointwise_stationary handles this input channel count.
inline bool stationary_handles(int in_c) { return in_c == 8 || in_c == 16 || in_c == 24; }

// NP consecutive pixels of one panel (n channels of it under `mask`).
template <int K, int NP, Activation kAct, bool kResidual>
FEATX_TARGET_AVX512 __attribute__((always_inline)) inline void stationary_pixels(const __m512 (&w)[K], __m512 b, __mmask16 mask,
                                                  const float* input, const float* residual,
                                                  float* output, int out_c) {
  __m512 acc[NP];
#pragma GCC unroll 8
  for (int j = 0; j < NP; ++j) acc[j] = b;
#pragma GCC unroll 24
  for (int k = 0; k < K; ++k)
#pragma GCC unroll 8
    for (int j = 0; j < NP; ++j)
      acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(input[j * K + k]), w[k], acc[j]);
#pragma GCC unroll 8
  for (int j = 0; j < NP; ++j) {
    __m512 x = acc[j];
    if constexpr (kResidual)
      x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, residual + size_t(j) * size_t(out_c)));
    _mm512_mask_storeu_ps(output + size_t(j) * size_t(out_c), mask, activate(x, kAct));
  }
}

// Pixels [0, pixels) of the panel whose first column is the pointers'
// channel; n: 1..16 channels of it are stored.
template <int K, Activation kAct, bool kResidual>
FEATX_TARGET_AVX512 inline void stationary_panel(const float* input, size_t pixels,
                                                 const float* panel, int out_c, const float* bias,
                                                 const float* residual, float* output, int n) {
  // 8 chains hide the FMA latency; with K = 24 only 7 registers are left.
  constexpr int kPixels = K + 8 + 1 <= 32 ? 8 : 31 - K;
  const __mmask16 mask = tail_mask(n);
  __m512 w[K];
#pragma GCC unroll 24
  for (int k = 0; k < K; ++k) w[k] = _mm512_loadu_ps(panel + size_t(k) * kPanelWidth);
  const __m512 b = _mm512_maskz_loadu_ps(mask, bias);
  const size_t out_stride = size_t(out_c);
  size_t p = 0;
  for (; p + kPixels <= pixels; p += kPixels)
    stationary_pixels<K, kPixels, kAct, kResidual>(w, b, mask, input + p * K,
                                                   kResidual ? residual + p * out_stride : nullptr,
                                                   output + p * out_stride, out_c);
  for (; p < pixels; ++p)
    stationary_pixels<K, 1, kAct, kResidual>(w, b, mask, input + p * K,
                                             kResidual ? residual + p * out_stride : nullptr,
                                             output + p * out_stride, out_c);
}

template <int K, Activation kAct, bool kResidual>
FEATX_TARGET_AVX512 inline void stationary_panels(const float* input, size_t pixels,
                                                  const float* weights, const float* bias,
                                                  int out_c, const float* residual,
                                                  float* output, int n_begin, int n_end) {
  for (int n0 = n_begin; n0 < n_end; n0 += kPanelWidth)
    stationary_panel<K, kAct, kResidual>(input, pixels, packed_panel(weights, K, n0), out_c,
                                         bias + n0, residual ? residual + n0 : nullptr,
                                         output + n0, n_end - n0);
}

template <int K>
FEATX_TARGET_AVX512 inline void stationary_k(const float* input, size_t pixels,
                                             const float* weights, const float* bias, int out_c,
                                             Activation act, const float* residual, float* output,
                                             int n_begin, int n_end) {
  if (residual) {
    if (act == Activation::relu6) stationary_panels<K, Activation::relu6, true>(input, pixels, weights, bias, out_c, residual, output, n_begin, n_end);
    else if (act == Activation::none) stationary_panels<K, Activation::none, true>(input, pixels, weights, bias, out_c, residual, output, n_begin, n_end);
    else stationary_panels<K, Activation::relu, true>(input, pixels, weights, bias, out_c, residual, output, n_begin, n_end);
  } else {
    if (act == Activation::relu6) stationary_panels<K, Activation::relu6, false>(input, pixels, weights, bias, out_c, residual, output, n_begin, n_end);
    else if (act == Activation::none) stationary_panels<K, Activation::none, false>(input, pixels, weights, bias, out_c, residual, output, n_begin, n_end);
    else stationary_panels<K, Activation::relu, false>(input, pixels, weights, bias, out_c, residual, output, n_begin, n_end);
  }
}

// Same contract as avx512::pointwise for stationary_handles(in_c).
inline void pointwise_stationary(const float* input, size_t pixel_begin, size_t pixel_end,
                                 int in_c, const float* weights, const float* bias, int out_c,
                                 Activation act, const float* residual, float* output,
                                 int n_begin, int n_end) {
  const size_t pixels = pixel_end - pixel_begin;
  const float* in = input + pixel_begin * size_t(in_c);
  const float* res = residual ? residual + pixel_begin * size_t(out_c) : nullptr;
  float* out = output + pixel_begin * size_t(out_c);
  if (in_c == 8) stationary_k<8>(in, pixels, weights, bias, out_c, act, res, out, n_begin, n_end);
  else if (in_c == 16) stationary_k<16>(in, pixels, weights, bias, out_c, act, res, out, n_begin, n_end);
  else stationary_k<24>(in, pixels, weights, bias, out_c, act, res, out, n_begin, n_end);
}

}  // namespace avx512
}  // namespace featx

#pragma GCC diagnostic pop

#endif  // FEATX_HAVE_X86_SIMD
