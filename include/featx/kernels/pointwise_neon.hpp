// featx/kernels/pointwise_neon.hpp: 1x1 convolution, NEON (AArch64 and
// 32-bit ARM), up to 5 pixels x 16 channels (one weight panel) per register
// tile on AArch64: 20 accumulators + 4 weight vectors + 5 inputs fit the 32
// q registers (6 x 16 made GCC 12 spill two accumulators inside the k
// loop); 2 x 16 on 32-bit ARM (kPointwiseMR).
//
// Same contract as pointwise_ref (input [pixels][in_c], weights packed in
// 16-column panels, fused bias, activation, optional residual) and the same
// accumulation order as the x86 kernels: each output starts at its bias,
// takes one fused multiply-add per k in order, then the residual, then the
// activation. NEON has no masked loads, so the last n % 4 channels of a
// panel run a scalar std::fma chain (bit-identical to a vector lane, but
// for 32-bit ARM's subnormals: vector_neon.hpp): nothing is read or written
// outside the caller's channel range.
#pragma once

#include <cmath>
#include <cstddef>

#include "featx/kernels/activation.hpp"
#include "featx/kernels/gemm_tiling.hpp"
#include "featx/kernels/isa.hpp"
#include "featx/kernels/packed_weights.hpp"
#include "featx/kernels/vector_neon.hpp"

#ifdef FEATX_HAVE_NEON

namespace featx {
namespace neon {

// MR pixels x 4*NV channels, all full vectors.
template <int MR, int NV>
inline void pointwise_tile_vec(const float* input, int in_c, const float* panel, int out_c,
                               const float* bias, Activation act, const float* residual,
                               float* output) {
  float32x4_t acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)  // bias null: continue the chains of an earlier K chunk
      acc[r][v] = vld1q_f32(bias ? bias + 4 * v : output + size_t(r) * out_c + 4 * v);
  const float* w = panel;
  for (int k = 0; k < in_c; ++k, w += kPanelWidth) {
    float32x4_t wv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) wv[v] = vld1q_f32(w + 4 * v);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const float a = input[size_t(r) * in_c + k];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = fma_by_scalar(acc[r][v], wv[v], a);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float32x4_t x = acc[r][v];
      if (residual) x = vaddq_f32(x, vld1q_f32(residual + size_t(r) * out_c + 4 * v));
      vst1q_f32(output + size_t(r) * out_c + 4 * v, activate(x, act));
    }
  }
}

// MR pixels x n < 4 channels: the same chain per output, in scalar code.
template <int MR>
inline void pointwise_tile_tail(const float* input, int in_c, const float* panel, int out_c,
                                const float* bias, Activation act, const float* residual,
                                float* output, int n) {
  for (int r = 0; r < MR; ++r) {
    const float* in = input + size_t(r) * in_c;
    for (int j = 0; j < n; ++j) {
      float acc = bias ? bias[j] : output[size_t(r) * out_c + j];
      const float* w = panel + j;
      for (int k = 0; k < in_c; ++k, w += kPanelWidth) acc = std::fma(in[k], *w, acc);
      if (residual) acc += residual[size_t(r) * out_c + j];
      output[size_t(r) * out_c + j] = activate(acc, act);
    }
  }
}

// MR pixels x n channels, 1 <= n <= 16, of one panel. input points at the
// tile's first pixel, bias/residual/output at its first channel.
template <int MR>
inline void pointwise_tile(const float* input, int in_c, const float* panel, int out_c,
                           const float* bias, Activation act, const float* residual,
                           float* output, int n) {
  const int full = n & ~3;
  switch (full / 4) {
    case 4: pointwise_tile_vec<MR, 4>(input, in_c, panel, out_c, bias, act, residual, output); break;
    case 3: pointwise_tile_vec<MR, 3>(input, in_c, panel, out_c, bias, act, residual, output); break;
    case 2: pointwise_tile_vec<MR, 2>(input, in_c, panel, out_c, bias, act, residual, output); break;
    case 1: pointwise_tile_vec<MR, 1>(input, in_c, panel, out_c, bias, act, residual, output); break;
    default: break;
  }
  if (n > full)
    pointwise_tile_tail<MR>(input, in_c, panel + full, out_c, bias ? bias + full : nullptr, act,
                            residual ? residual + full : nullptr, output + full, n - full);
}

// 32-bit ARM has 16 q registers, not 32: 2 x 16 there (8 accumulators + 4
// weights + the broadcast input); GCC 12 spills the 5 x 16 tile to the
// stack (189 vector loads and stores, against 4 for 2 x 16). Not timed on
// hardware.
#ifdef __aarch64__
constexpr int kPointwiseMR = 5;
#else
constexpr int kPointwiseMR = 2;
#endif
constexpr int kPointwiseNR = kPanelWidth;

// The one switch from a run-time pixel count (1..5) to a tile.
inline void pointwise_rows(int m, const float* input, int in_c, const float* panel, int out_c,
                           const float* bias, Activation act, const float* residual,
                           float* output, int n) {
  switch (m) {
    case 5: pointwise_tile<5>(input, in_c, panel, out_c, bias, act, residual, output, n); break;
    case 4: pointwise_tile<4>(input, in_c, panel, out_c, bias, act, residual, output, n); break;
    case 3: pointwise_tile<3>(input, in_c, panel, out_c, bias, act, residual, output, n); break;
    case 2: pointwise_tile<2>(input, in_c, panel, out_c, bias, act, residual, output, n); break;
    default: pointwise_tile<1>(input, in_c, panel, out_c, bias, act, residual, output, n); break;
  }
}

// n_begin must be a multiple of kPanelWidth.
inline void pointwise(const float* input, size_t pixel_begin, size_t pixel_end, int in_c,
                      const float* weights, const float* bias, int out_c, Activation act,
                      const float* residual, float* output, int n_begin, int n_end) {
  pointwise_tiled<kPointwiseMR, kPointwiseNR>(input, pixel_begin, pixel_end, in_c, weights, bias,
                                              out_c, act, residual, output, n_begin, n_end,
                                              pointwise_rows);
}

}  // namespace neon
}  // namespace featx

#endif  // FEATX_HAVE_NEON
