// featx/kernels/im2col.hpp: gathers the receptive fields of a few output
// pixels of one row into a [pixels][kh*kw*in] patch matrix, zero where the
// field falls into TF SAME padding. Shared by every ISA's full conv.
#pragma once

#include <cstring>

#include "featx/kernels/conv_ref.hpp"

namespace featx {

// Patch matrices live on the stack: 8 pixels x 1024 floats = 32 KiB at most.
constexpr int kIm2colMaxDepth = 1024;

inline void im2col_pixels(const ConvGeometry& g, const float* input, int oy, int ox0, int count,
                          float* patches) {
  const int depth = g.kernel_h * g.kernel_w * g.in_c;
  const int span = g.kernel_w * g.in_c;  // one kernel row: contiguous in NHWC input
  for (int px = 0; px < count; ++px) {
    float* dst = patches + size_t(px) * depth;
    const int ix0 = (ox0 + px) * g.stride - g.pad_left;
    const bool columns_inside = ix0 >= 0 && ix0 + g.kernel_w <= g.in_w;
    for (int ky = 0; ky < g.kernel_h; ++ky, dst += span) {
      const int iy = oy * g.stride - g.pad_top + ky;
      if (iy < 0 || iy >= g.in_h) {
        for (int i = 0; i < span; ++i) dst[i] = 0.0f;
        continue;
      }
      const float* row = input + size_t(iy) * size_t(g.in_w) * size_t(g.in_c);
      if (columns_inside && span == 9) {  // the 3x3 RGB stem
        std::memcpy(dst, row + size_t(ix0) * g.in_c, 9 * sizeof(float));  // constant size: inlined as two moves
      } else if (columns_inside) {
        std::memcpy(dst, row + size_t(ix0) * g.in_c, sizeof(float) * size_t(span));
      } else {
        // Pointers only to pixels inside the row: ix0 may be negative (left
        // padding), and a pointer before the input is undefined even unread.
        for (int kx = 0; kx < g.kernel_w; ++kx) {
          const int ix = ix0 + kx;
          float* d = dst + kx * g.in_c;
          if (ix < 0 || ix >= g.in_w) {
            for (int c = 0; c < g.in_c; ++c) d[c] = 0.0f;
          } else {
            const float* src = row + size_t(ix) * g.in_c;
            for (int c = 0; c < g.in_c; ++c) d[c] = src[c];
          }
        }
      }
    }
  }
}

}  // namespace featx
