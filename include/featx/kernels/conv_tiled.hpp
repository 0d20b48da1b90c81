// featx/kernels/conv_tiled.hpp: the walk over a full KxK convolution (the
// stem) shared by the SIMD kernels; each ISA supplies its register tiles.
//
// Weights [kh][kw][in][out] are a [kh*kw*in][out] matrix packed in panels.
// Interior pixels, whose whole window is inside the input, read their
// inputs straight from the image: a window row is kw*in contiguous floats
// in NHWC, so matrix row k is tap (ky, i) at origin + ky * row_step + i.
// Border pixels are gathered into a zero-padded patch matrix on the stack
// (im2col; adding 0 * w leaves a float sum unchanged) and multiplied by
// the 1x1 tile. Both paths run the same FMA chain over k, so a pixel's
// value does not depend on which path computed it.
#pragma once

#include <cstddef>

#include "featx/kernels/activation.hpp"
#include "featx/kernels/conv_interior.hpp"
#include "featx/kernels/conv_ref.hpp"
#include "featx/kernels/gemm_tiling.hpp"
#include "featx/kernels/im2col.hpp"
#include "featx/kernels/packed_weights.hpp"

namespace featx {

// m interior pixels x n channels read from the image (origin: the first
// pixel's window corner; pixel_step / row_step: floats to the next pixel's
// window / the next kernel row; span = kw * in).
using DirectRows = void (*)(int m, const float* origin, size_t pixel_step, size_t row_step,
                            int kernel_h, int span, const float* panel, int out_c,
                            const float* bias, Activation act, float* output, int n);

// Output rows [row_begin, row_end) with MR x NR tiles; gathered_rows
// multiplies a patch matrix (the ISA's pointwise_rows). The tiles carry the
// ISA's target attribute; this walk holds no vector values. Without
// direct_rows every pixel goes through the patch path.
template <int MR, int NR>
inline void conv2d_tiled(const ConvGeometry& g, const float* input, const float* weights,
                         const float* bias, Activation act, float* output, int row_begin,
                         int row_end, GemmRows gathered_rows, DirectRows direct_rows) {
  const int depth = g.kernel_h * g.kernel_w * g.in_c;
  if (depth > kIm2colMaxDepth) {  // not MobileNetV2's stem: use the reference
    conv2d_ref(g, input, weights, bias, act, output, row_begin, row_end);
    return;
  }
  const int span = g.kernel_w * g.in_c;
  const size_t pixel_step = size_t(g.stride) * size_t(g.in_c), row_step = size_t(g.in_w) * size_t(g.in_c);
  const ColumnRange inner_columns = interior_columns(g);
  alignas(64) float patches[MR * kIm2colMaxDepth];
  for (int oy = row_begin; oy < row_end; ++oy) {
    const int iy0 = oy * g.stride - g.pad_top;
    const bool rows_inside = iy0 >= 0 && iy0 + g.kernel_h <= g.in_h;
    const ColumnRange inner =
        rows_inside && direct_rows ? inner_columns : ColumnRange{g.out_w, g.out_w};
    float* out_row = output + size_t(oy) * size_t(g.out_w) * size_t(g.out_c);
    auto gathered = [&](int begin, int end) {
      for (int ox0 = begin; ox0 < end; ox0 += MR) {
        const int m = end - ox0 < MR ? end - ox0 : MR;
        im2col_pixels(g, input, oy, ox0, m, patches);
        for (int n0 = 0; n0 < g.out_c; n0 += NR)
          gathered_rows(m, patches, depth, packed_panel(weights, depth, n0), g.out_c, bias + n0,
                        act, nullptr, out_row + size_t(ox0) * g.out_c + n0,
                        g.out_c - n0 < NR ? g.out_c - n0 : NR);
      }
    };
    gathered(0, inner.begin);
    const float* row_origin = input + size_t(iy0 < 0 ? 0 : iy0) * row_step;
    for_each_gemm_tile<MR, NR>(
        size_t(inner.begin), size_t(inner.end), 0, g.out_c, [&](size_t ox, int m, int n0, int n) {
          direct_rows(m, row_origin + size_t(int(ox) * g.stride - g.pad_left) * g.in_c,
                      pixel_step, row_step, g.kernel_h, span, packed_panel(weights, depth, n0),
                      g.out_c, bias + n0, act, out_row + ox * size_t(g.out_c) + n0, n);
        });
    gathered(inner.end, g.out_w);
  }
}

}  // namespace featx
