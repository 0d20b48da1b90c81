// featx/kernels/pointwise_avx512.hpp: 1x1 convolution, AVX-512, up to 12
// pixels x 32 channels (two weight panels) per register tile; 8- and
// 24-channel tiles in pixel pairs (pointwise_pairs_avx512.hpp).
//
// Same contract as pointwise_ref (input [pixels][in_c], weights packed in
// 16-column panels, fused bias, activation, optional residual). Each k step
// loads one cache line from each panel (loadu: any float pointer works, and
// model weights are 64-byte aligned), broadcasts one input per pixel and
// issues 2 x MR FMAs. Channel tails mask only bias, residual and
// stores: packed panels are zero-padded. Each output is one FMA chain over k
// in order: deterministic, independent of how pixels are split between
// tiles or threads.
#pragma once

#include <cstddef>

#include "featx/kernels/activation.hpp"
#include "featx/kernels/gemm_tiling.hpp"
#include "featx/kernels/isa.hpp"
#include "featx/kernels/packed_weights.hpp"
#include "featx/kernels/pointwise_pairs_avx512.hpp"
#include "featx/kernels/pointwise_stationary_avx512.hpp"
#include "featx/kernels/vector_avx512.hpp"

#ifdef FEATX_HAVE_X86_SIMD

// GCC 12 warns inside its own _mm512_maskz_loadu_ps (an intentionally
// undefined pass-through operand); the warning is about the header, not us.
#pragma GCC diagnostic push
#if !defined(__clang__)  // a GCC-only warning; clang would warn that it does not know it
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace featx {
namespace avx512 {

// 12 x 32: 24 accumulators + 2 weight vectors + 1 broadcast of the 32 zmm
// registers; per k, 14 loads feed 24 FMAs and each weight line serves 12
// pixels (8 x 32 streamed 1.5x the weight bytes per FMA, and the project
// convs of the 14x14 and 7x7 blocks, K = 384..960, ran 7-16% slower).
constexpr int kPointwiseMR = 12, kPointwiseNR = 2 * kPanelWidth;

// Adds the residual, applies the activation and stores MR rows of NV
// vectors. kAct and kResidual are template parameters, so activate()
// folds on a constant and the 12-24 stores of a tile run without a branch
// each (with a small K, e.g. the K = 32 expands, the epilogue is a large
// share of a tile's instructions).
template <int MR, int NV, Activation kAct, bool kResidual>
FEATX_TARGET_AVX512 inline void store_tile(const __m512 (&acc)[MR][NV], const __mmask16 (&mask)[2],
                                           const float* residual, float* output, int out_c) {
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      __m512 x = acc[r][v];
      if constexpr (kResidual)
        x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask[v], residual + size_t(r) * out_c + 16 * v));
      _mm512_mask_storeu_ps(output + size_t(r) * out_c + 16 * v, mask[v], activate(x, kAct));
    }
}

template <int MR, int NV, bool kResidual>
FEATX_TARGET_AVX512 inline void store_tile(const __m512 (&acc)[MR][NV], const __mmask16 (&mask)[2],
                                           Activation act, const float* residual, float* output,
                                           int out_c) {
  if (act == Activation::relu6) store_tile<MR, NV, Activation::relu6, kResidual>(acc, mask, residual, output, out_c);
  else if (act == Activation::none) store_tile<MR, NV, Activation::none, kResidual>(acc, mask, residual, output, out_c);
  else store_tile<MR, NV, Activation::relu, kResidual>(acc, mask, residual, output, out_c);
}

// MR pixels x NV panels (n: 1..16 * NV channels). panel: the packed panel
// of the tile's first channel (64-byte aligned); input, bias, residual and
// output point at the tile's first pixel and channel. NV = 1 reads one
// panel only: a second may not exist past the last channel.
template <int MR, int NV>
FEATX_TARGET_AVX512 inline void pointwise_tile(const float* input, int in_c, const float* panel,
                                               int out_c, const float* bias, Activation act,
                                               const float* residual, float* output, int n) {
  const __mmask16 mask[2] = {tail_mask(n), tail_mask(n - 16)};
  __m512 acc[MR][NV];
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    if (bias) {
      const __m512 b = _mm512_maskz_loadu_ps(mask[v], bias + 16 * v);
#pragma GCC unroll 12
      for (int r = 0; r < MR; ++r) acc[r][v] = b;
    } else {  // continue the chains stored by an earlier K chunk
#pragma GCC unroll 12
      for (int r = 0; r < MR; ++r)
        acc[r][v] = _mm512_maskz_loadu_ps(mask[v], output + size_t(r) * out_c + 16 * v);
    }
  }
  const size_t second = size_t(in_c) * kPanelWidth;
  const float* w = panel;
  for (int k = 0; k < in_c; ++k, w += kPanelWidth) {
    __m512 wv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) wv[v] = _mm512_loadu_ps(w + second * size_t(v));
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512 a = _mm512_set1_ps(input[size_t(r) * in_c + k]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(a, wv[v], acc[r][v]);
    }
  }
  if (residual) store_tile<MR, NV, true>(acc, mask, act, residual, output, out_c);
  else store_tile<MR, NV, false>(acc, mask, act, residual, output, out_c);
}

// From a run-time pixel count m (1..MR) to an MR x 32 tile.
template <int MR = kPointwiseMR>
FEATX_TARGET_AVX512 inline void pointwise_tile_rows(int m, const float* input, int in_c,
                                                    const float* panel, int out_c,
                                                    const float* bias, Activation act,
                                                    const float* residual, float* output, int n) {
  if constexpr (MR > 1) {
    if (m < MR) {
      pointwise_tile_rows<MR - 1>(m, input, in_c, panel, out_c, bias, act, residual, output, n);
      return;
    }
  }
  if (n > 16) pointwise_tile<MR, 2>(input, in_c, panel, out_c, bias, act, residual, output, n);
  else pointwise_tile<MR, 1>(input, in_c, panel, out_c, bias, act, residual, output, n);
}

// From a run-time pixel count m (1..MR) to a tile; the pointwise and the
// full conv kernels both go through it. 8 and 24 channels go in pixel
// pairs (every lane useful), an odd last pixel through the 1 x 32 tile.
template <int MR = kPointwiseMR>
FEATX_TARGET_AVX512 inline void pointwise_rows(int m, const float* input, int in_c,
                                               const float* panel, int out_c, const float* bias,
                                               Activation act, const float* residual,
                                               float* output, int n) {
  static_assert(MR / 2 <= kPairsMax, "a tile's pairs fit the pair tile");
  if (m >= 2 && pairs_handle(n)) {
    pointwise_pairs<MR / 2>(m / 2, input, in_c, panel, out_c, bias, act, residual, output, n);
    if (m % 2 == 0) return;
    const size_t last = size_t(m - 1);
    input += last * size_t(in_c);
    output += last * size_t(out_c);
    if (residual) residual += last * size_t(out_c);
    m = 1;
  }
  pointwise_tile_rows<MR>(m, input, in_c, panel, out_c, bias, act, residual, output, n);
}

// The register tiles alone, for any in_c (tests compare both paths).
inline void pointwise_tiles(const float* input, size_t pixel_begin, size_t pixel_end, int in_c,
                            const float* weights, const float* bias, int out_c, Activation act,
                            const float* residual, float* output, int n_begin, int n_end) {
  pointwise_tiled<kPointwiseMR, kPointwiseNR>(input, pixel_begin, pixel_end, in_c, weights, bias,
                                              out_c, act, residual, output, n_begin, n_end,
                                              pointwise_rows<>);
}

// n_begin must be a multiple of kPanelWidth. Few input channels (the
// first expand convs) keep their weights in registers instead (not when
// continuing stored chains: bias null).
inline void pointwise(const float* input, size_t pixel_begin, size_t pixel_end, int in_c,
                      const float* weights, const float* bias, int out_c, Activation act,
                      const float* residual, float* output, int n_begin, int n_end) {
  if (bias && stationary_handles(in_c)) {
    pointwise_stationary(input, pixel_begin, pixel_end, in_c, weights, bias, out_c, act, residual,
                         output, n_begin, n_end);
    return;
  }
  pointwise_tiles(input, pixel_begin, pixel_end, in_c, weights, bias, out_c, act, residual, output,
                  n_begin, n_end);
}

}  // namespace avx512
}  // namespace featx

#pragma GCC diagnostic pop

#endif  // FEATX_HAVE_X86_SIMD
