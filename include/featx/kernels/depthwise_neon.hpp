// featx/kernels/depthwise_neon.hpp: depthwise KxK convolution, NEON
// (AArch64 and 32-bit ARM), 8 channels (two vectors) per group on AArch64
// and 4 on 32-bit ARM, then one 4-channel vector, then a scalar tail; fused
// bias and activation, TF SAME padding.
//
// For 3x3 (every MobileNetV2 depthwise layer) the nine weight vectors of a
// channel group stay in registers (18 of AArch64's 32 q registers for two
// vectors, 9 of 32-bit ARM's 16 for one) while the kernel walks a row of
// output pixels. Taps are accumulated in (ky, kx) order from
// the bias, skipping padding, like depthwise_ref; the < 4 tail channels use
// std::fma in the same order, so nothing is read or written past `channels`.
#pragma once

#include <cmath>

#include "featx/kernels/conv_ref.hpp"
#include "featx/kernels/vector_neon.hpp"

#ifdef FEATX_HAVE_NEON

namespace featx {
namespace neon {

// One output row, channels [c0, c0 + 4*NV).
template <int NV>
inline void depthwise_row_vec(const ConvGeometry& g, const float* input, const float* weights,
                              const float* bias, Activation act, float* out_row, int oy, int c0) {
  const int channels = g.out_c;
  const size_t in_row = size_t(g.in_w) * channels;
  const int iy0 = oy * g.stride - g.pad_top;
  float32x4_t b[NV];
  for (int v = 0; v < NV; ++v) b[v] = vld1q_f32(bias + c0 + 4 * v);
  if (g.kernel_h == 3 && g.kernel_w == 3) {
    float32x4_t w[9][NV];
#pragma GCC unroll 9
    for (int t = 0; t < 9; ++t)
      for (int v = 0; v < NV; ++v) w[t][v] = vld1q_f32(weights + size_t(t) * channels + c0 + 4 * v);
    for (int ox = 0; ox < g.out_w; ++ox) {
      const int ix0 = ox * g.stride - g.pad_left;
      float32x4_t acc[NV];
      for (int v = 0; v < NV; ++v) acc[v] = b[v];
#pragma GCC unroll 3
      for (int ky = 0; ky < 3; ++ky) {
        const int iy = iy0 + ky;
        if (iy < 0 || iy >= g.in_h) continue;
        const float* row = input + size_t(iy) * in_row + c0;
#pragma GCC unroll 3
        for (int kx = 0; kx < 3; ++kx) {
          const int ix = ix0 + kx;
          if (ix < 0 || ix >= g.in_w) continue;
          const float* px = row + size_t(ix) * channels;
          for (int v = 0; v < NV; ++v) acc[v] = vfmaq_f32(acc[v], vld1q_f32(px + 4 * v), w[ky * 3 + kx][v]);
        }
      }
      float* out = out_row + size_t(ox) * channels + c0;
      for (int v = 0; v < NV; ++v) vst1q_f32(out + 4 * v, activate(acc[v], act));
    }
    return;
  }
  for (int ox = 0; ox < g.out_w; ++ox) {
    const int ix0 = ox * g.stride - g.pad_left;
    float32x4_t acc[NV];
    for (int v = 0; v < NV; ++v) acc[v] = b[v];
    for (int ky = 0; ky < g.kernel_h; ++ky) {
      const int iy = iy0 + ky;
      if (iy < 0 || iy >= g.in_h) continue;
      for (int kx = 0; kx < g.kernel_w; ++kx) {
        const int ix = ix0 + kx;
        if (ix < 0 || ix >= g.in_w) continue;
        const float* px = input + size_t(iy) * in_row + size_t(ix) * channels + c0;
        const float* wt = weights + (size_t(ky) * g.kernel_w + kx) * channels + c0;
        for (int v = 0; v < NV; ++v) acc[v] = vfmaq_f32(acc[v], vld1q_f32(px + 4 * v), vld1q_f32(wt + 4 * v));
      }
    }
    float* out = out_row + size_t(ox) * channels + c0;
    for (int v = 0; v < NV; ++v) vst1q_f32(out + 4 * v, activate(acc[v], act));
  }
}

// One output row, channels [c0, c0 + n) with n < 4, same order in scalar code.
inline void depthwise_row_tail(const ConvGeometry& g, const float* input, const float* weights,
                               const float* bias, Activation act, float* out_row, int oy, int c0,
                               int n) {
  const int channels = g.out_c;
  const int iy0 = oy * g.stride - g.pad_top;
  for (int ox = 0; ox < g.out_w; ++ox) {
    const int ix0 = ox * g.stride - g.pad_left;
    for (int c = c0; c < c0 + n; ++c) {
      float acc = bias[c];
      for (int ky = 0; ky < g.kernel_h; ++ky) {
        const int iy = iy0 + ky;
        if (iy < 0 || iy >= g.in_h) continue;
        for (int kx = 0; kx < g.kernel_w; ++kx) {
          const int ix = ix0 + kx;
          if (ix < 0 || ix >= g.in_w) continue;
          acc = std::fma(input[(size_t(iy) * g.in_w + ix) * channels + c],
                         weights[(size_t(ky) * g.kernel_w + kx) * channels + c], acc);
        }
      }
      out_row[size_t(ox) * channels + c] = activate(acc, act);
    }
  }
}

// Vectors per channel group. 32-bit ARM: one, as GCC 12 spills the
// two-vector 3x3 group to the stack there (36 vector loads and stores).
#ifdef __aarch64__
constexpr int kDepthwiseVectors = 2;
#else
constexpr int kDepthwiseVectors = 1;
#endif

inline void depthwise(const ConvGeometry& g, const float* input, const float* weights,
                      const float* bias, Activation act, float* output, int row_begin,
                      int row_end) {
  const int channels = g.out_c;
  constexpr int group = 4 * kDepthwiseVectors;
  for (int oy = row_begin; oy < row_end; ++oy) {
    float* out_row = output + size_t(oy) * g.out_w * channels;
    int c0 = 0;
    for (; c0 + group <= channels; c0 += group)
      depthwise_row_vec<kDepthwiseVectors>(g, input, weights, bias, act, out_row, oy, c0);
    if (group > 4 && c0 + 4 <= channels) {
      depthwise_row_vec<1>(g, input, weights, bias, act, out_row, oy, c0);
      c0 += 4;
    }
    if (c0 < channels) depthwise_row_tail(g, input, weights, bias, act, out_row, oy, c0, channels - c0);
  }
}

}  // namespace neon
}  // namespace featx

#endif  // FEATX_HAVE_NEON
