// featx/kernels/pointwise_neon.hpp: 1x1 convolution, NEON (aarch64), up to
// 7 pixels x 12 channels per register tile: 21 accumulators + 3 weight
// vectors + 7 broadcast inputs fit the 32 q registers (8 x 12 made GCC 12
// spill an accumulator inside the k loop).
//
// Same contract as pointwise_ref (input [pixels][in_c], weights [in_c][out_c],
// fused bias, activation, optional residual) and the same accumulation order
// as the x86 kernels: each output starts at its bias, takes one fused
// multiply-add per k in order, then the residual, then the activation.
// NEON has no masked loads, so the last out_c % 4 channels of a panel run a
// scalar std::fma chain (bit-identical to a vector lane): nothing is read or
// written outside the caller's channel range.
#pragma once

#include <cmath>
#include <cstddef>

#include "featx/kernels/activation.hpp"
#include "featx/kernels/isa.hpp"

#ifdef FEATX_HAVE_NEON

namespace featx {
namespace neon {

inline float32x4_t activate(float32x4_t v, Activation act) {
  if (act == Activation::none) return v;
  v = vmaxq_f32(v, vdupq_n_f32(0.0f));
  if (act == Activation::relu6) v = vminq_f32(v, vdupq_n_f32(6.0f));
  return v;
}

// Through the vector path so tail channels get exactly the lanes' semantics
// (FMAX/FMIN on NaN and signed zero).
inline float activate(float x, Activation act) {
  return vgetq_lane_f32(activate(vdupq_n_f32(x), act), 0);
}

// MR pixels x 4*NV channels, all full vectors.
template <int MR, int NV>
inline void pointwise_tile_vec(const float* input, int in_c, const float* weights, int out_c,
                               const float* bias, Activation act, const float* residual,
                               float* output) {
  float32x4_t acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) acc[r][v] = vld1q_f32(bias + 4 * v);
  const float* w = weights;
  for (int k = 0; k < in_c; ++k, w += out_c) {
    float32x4_t wv[NV];
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) wv[v] = vld1q_f32(w + 4 * v);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const float a = input[size_t(r) * in_c + k];
#pragma GCC unroll 3
      for (int v = 0; v < NV; ++v) acc[r][v] = vfmaq_n_f32(acc[r][v], wv[v], a);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) {
      float32x4_t x = acc[r][v];
      if (residual) x = vaddq_f32(x, vld1q_f32(residual + size_t(r) * out_c + 4 * v));
      vst1q_f32(output + size_t(r) * out_c + 4 * v, activate(x, act));
    }
  }
}

// MR pixels x n < 4 channels: the same chain per output, in scalar code.
template <int MR>
inline void pointwise_tile_tail(const float* input, int in_c, const float* weights, int out_c,
                                const float* bias, Activation act, const float* residual,
                                float* output, int n) {
  for (int r = 0; r < MR; ++r) {
    const float* in = input + size_t(r) * in_c;
    for (int j = 0; j < n; ++j) {
      float acc = bias[j];
      const float* w = weights + j;
      for (int k = 0; k < in_c; ++k, w += out_c) acc = std::fma(in[k], *w, acc);
      if (residual) acc += residual[size_t(r) * out_c + j];
      output[size_t(r) * out_c + j] = activate(acc, act);
    }
  }
}

// MR pixels x n channels, 1 <= n <= 12. input points at the tile's first
// pixel, weights/bias/residual/output at its first channel.
template <int MR>
inline void pointwise_tile(const float* input, int in_c, const float* weights, int out_c,
                           const float* bias, Activation act, const float* residual,
                           float* output, int n) {
  const int full = n & ~3;
  switch (full / 4) {
    case 3: pointwise_tile_vec<MR, 3>(input, in_c, weights, out_c, bias, act, residual, output); break;
    case 2: pointwise_tile_vec<MR, 2>(input, in_c, weights, out_c, bias, act, residual, output); break;
    case 1: pointwise_tile_vec<MR, 1>(input, in_c, weights, out_c, bias, act, residual, output); break;
    default: break;
  }
  if (n > full)
    pointwise_tile_tail<MR>(input, in_c, weights + full, out_c, bias + full, act,
                            residual ? residual + full : nullptr, output + full, n - full);
}

constexpr int kMR = 7, kNR = 12;

// Width of the next column panel when `left` channels remain: 12 where
// possible, but 16 as 8 + 8 rather than 12 + 4 (a 1-vector panel does one
// FMA per load).
inline int panel_width(int left) {
  if (left <= kNR) return left;
  return left / 4 == 4 ? 8 : kNR;
}

// m (1..kMR) pixels x n (1..kNR) channels.
inline void pointwise_block(int m, const float* input, int in_c, const float* weights, int out_c,
                            const float* bias, Activation act, const float* residual,
                            float* output, int n) {
  switch (m) {
    case 7: pointwise_tile<7>(input, in_c, weights, out_c, bias, act, residual, output, n); break;
    case 6: pointwise_tile<6>(input, in_c, weights, out_c, bias, act, residual, output, n); break;
    case 5: pointwise_tile<5>(input, in_c, weights, out_c, bias, act, residual, output, n); break;
    case 4: pointwise_tile<4>(input, in_c, weights, out_c, bias, act, residual, output, n); break;
    case 3: pointwise_tile<3>(input, in_c, weights, out_c, bias, act, residual, output, n); break;
    case 2: pointwise_tile<2>(input, in_c, weights, out_c, bias, act, residual, output, n); break;
    default: pointwise_tile<1>(input, in_c, weights, out_c, bias, act, residual, output, n); break;
  }
}

inline void pointwise(const float* input, size_t pixel_begin, size_t pixel_end, int in_c,
                      const float* weights, const float* bias, int out_c, Activation act,
                      const float* residual, float* output, int n_begin, int n_end) {
  // Column panels outer, pixel tiles inner: one panel of weights (in_c x 12
  // floats) is reused from L1/L2 by every pixel tile.
  for (int n0 = n_begin, n; n0 < n_end; n0 += n) {
    n = panel_width(n_end - n0);
    for (size_t p = pixel_begin; p < pixel_end; p += kMR) {
      const int m = pixel_end - p < size_t(kMR) ? int(pixel_end - p) : kMR;
      const float* r = residual ? residual + p * size_t(out_c) + n0 : nullptr;
      pointwise_block(m, input + p * size_t(in_c), in_c, weights + n0, out_c, bias + n0, act, r,
                      output + p * size_t(out_c) + n0, n);
    }
  }
}

}  // namespace neon
}  // namespace featx

#endif  // FEATX_HAVE_NEON
