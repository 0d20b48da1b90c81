// featx/kernels/gemm_tiling.hpp: the walk over register tiles shared by
// every ISA's 1x1 conv, so the loop order and the pixel split live once.
#pragma once

#include <cstddef>

namespace featx {

// Calls tile(first_pixel, pixels, first_channel, channels) for every tile
// of at most MR pixels x NR channels covering [pixel_begin, pixel_end) x
// [n_begin, n_end). Column panels are the outer loop, so one panel of
// weights is reused from L1/L2 by every pixel tile instead of streaming all
// weights once per tile (the 1x1 convs of the last blocks have 1-2 MB).
// Pixels are spread evenly over the tiles (49 = 7 x 7, not 6 x 8 + 1): a
// 1-pixel tile costs nearly as much as a full one. Which tile computes a
// pixel never changes its value (each output is one FMA chain over k).
template <int MR, int NR, typename Tile>
inline void for_each_gemm_tile(size_t pixel_begin, size_t pixel_end, int n_begin, int n_end,
                               Tile&& tile) {
  const size_t pixels = pixel_end - pixel_begin;
  const size_t tiles = (pixels + MR - 1) / MR;
  for (int n0 = n_begin; n0 < n_end; n0 += NR) {
    const int n = n_end - n0 < NR ? n_end - n0 : NR;
    for (size_t t = 0; t < tiles; ++t) {
      const size_t p = pixel_begin + pixels * t / tiles;
      tile(p, int(pixel_begin + pixels * (t + 1) / tiles - p), n0, n);
    }
  }
}

}  // namespace featx
