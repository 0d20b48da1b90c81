// featx/kernels/gemm_tiling.hpp: the walk over register tiles shared by
// every ISA's 1x1 conv, so the loop order and the pixel split live once.
#pragma once

#include <cstddef>

#include "featx/kernels/activation.hpp"
#include "featx/kernels/packed_weights.hpp"

namespace featx {

// Calls tile(first_pixel, pixels, first_channel, channels) for every tile
// of at most MR pixels x NR channels covering [pixel_begin, pixel_end) x
// [n_begin, n_end). Column panels are the outer loop, so one panel of
// weights is reused from L1/L2 by every pixel tile instead of streaming all
// weights once per tile (the 1x1 convs of the last blocks have 1-2 MB).
// Pixels are spread evenly over the tiles (49 = 10+10+10+10+9 with MR = 12,
// not 4 x 12 + 1): a 1-pixel tile costs nearly as much as a full one. Which
// tile computes a pixel never changes its value (each output is one FMA
// chain over k).
template <int MR, int NR, typename Tile>
inline void for_each_gemm_tile(size_t pixel_begin, size_t pixel_end, int n_begin, int n_end,
                               Tile&& tile) {
  const size_t pixels = pixel_end - pixel_begin;
  const size_t tiles = (pixels + MR - 1) / MR;
  if (tiles == 0) return;
  // The first `larger` tiles take one pixel more; no division per tile (a
  // 64-bit divide is ~40+ cycles, and a K = 16 tile is only ~200).
  const int base = int(pixels / tiles);
  const size_t larger = pixels % tiles;
  for (int n0 = n_begin; n0 < n_end; n0 += NR) {
    const int n = n_end - n0 < NR ? n_end - n0 : NR;
    size_t p = pixel_begin;
    for (size_t t = 0; t < tiles; ++t) {
      const int m = base + (t < larger ? 1 : 0);
      tile(p, m, n0, n);
      p += size_t(m);
    }
  }
}

// An ISA's register tile behind a run-time row count: m (1..MR) rows of a
// [rows][k] input x n (1..NR) channels of the packed panel, fused bias,
// activation and optional residual (each ISA's pointwise_rows).
using GemmRows = void (*)(int m, const float* input, int k, const float* panel, int out_c,
                          const float* bias, Activation act, const float* residual,
                          float* output, int n);

// A whole 1x1 conv (pointwise_ref's contract, n_begin a multiple of
// kPanelWidth) on an ISA's tile. The tile carries the ISA's target
// attribute; this walk holds no vector values.
template <int MR, int NR>
inline void pointwise_tiled(const float* input, size_t pixel_begin, size_t pixel_end, int in_c,
                            const float* weights, const float* bias, int out_c, Activation act,
                            const float* residual, float* output, int n_begin, int n_end,
                            GemmRows rows) {
  for_each_gemm_tile<MR, NR>(
      pixel_begin, pixel_end, n_begin, n_end, [&](size_t p, int m, int n0, int n) {
        rows(m, input + p * size_t(in_c), in_c, packed_panel(weights, in_c, n0), out_c,
             bias ? bias + n0 : nullptr, act, residual ? residual + p * size_t(out_c) + n0 : nullptr,
             output + p * size_t(out_c) + n0, n);
      });
}

}  // namespace featx
