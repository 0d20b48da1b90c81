// featx/kernels/depthwise3x3_rows.hpp: the walk over a row of a 3x3
// depthwise conv (stride 1 or 2) shared by the SIMD kernels; each ISA
// supplies only its run kernel and its per-pixel fallback.
//
// A row is cut into the border pixels, whose windows hang into the padding
// (run one at a time with the clipped columns as template parameters), and
// the interior, in runs of up to 8 (stride 1) or 4 (stride 2) pixels spread
// evenly (54 = 5 x 8 + 2 x 7, not 6 x 8 + 6 x 1: a lone pixel is one FMA
// chain that waits on itself). Window rows in the padding are template
// parameters too, so a run's channel loop has no branches.
//
// Kernel is a struct with
//   template <int NP, int S, int KY0, int KY1, int KX0, int KX1>
//   static void run(const ConvGeometry&, const float* input, int iy0, int ix0,
//                   const float* weights, const float* bias, Activation, float* out);
//     NP pixels of one row, every channel, taps only in window rows
//     [KY0, KY1) and columns [KX0, KX1); iy0/ix0: the window's first row and
//     the first pixel's first column;
//   static void pixel_row(const ConvGeometry&, const float* input, const float* weights,
//                         const float* bias, Activation, float* out_row, int oy);
//     any kernel size, every tap checked.
// Their target attributes stay on them: this driver holds no vector values,
// so it is plain C++ and calls them (a call per run of pixels x channels).
#pragma once

#include "featx/kernels/activation.hpp"
#include "featx/kernels/conv_interior.hpp"
#include "featx/kernels/conv_ref.hpp"

namespace featx {

template <typename Kernel, int S, int KY0, int KY1>
inline void depthwise3x3_row(const ConvGeometry& g, const float* input, const float* weights,
                             const float* bias, Activation act, float* out_row, int oy,
                             ColumnRange inner) {
  constexpr int kRun = S == 1 ? 8 : 4;
  const int iy0 = oy * S - g.pad_top;
  const size_t pixel = size_t(g.out_c);
  auto border = [&](int ox) {
    const int ix0 = ox * S - g.pad_left;
    const int kx0 = ix0 < 0 ? -ix0 : 0, kx1 = g.in_w - ix0 < 3 ? g.in_w - ix0 : 3;
    float* out = out_row + size_t(ox) * pixel;
    if (kx0 == 1 && kx1 == 3) Kernel::template run<1, S, KY0, KY1, 1, 3>(g, input, iy0, ix0, weights, bias, act, out);
    else if (kx0 == 0 && kx1 == 2) Kernel::template run<1, S, KY0, KY1, 0, 2>(g, input, iy0, ix0, weights, bias, act, out);
    else if (kx0 == 1 && kx1 == 2) Kernel::template run<1, S, KY0, KY1, 1, 2>(g, input, iy0, ix0, weights, bias, act, out);
    else if (kx0 == 0 && kx1 == 1) Kernel::template run<1, S, KY0, KY1, 0, 1>(g, input, iy0, ix0, weights, bias, act, out);
    else Kernel::template run<1, S, KY0, KY1, 2, 3>(g, input, iy0, ix0, weights, bias, act, out);  // kx0 == 2
  };
  for (int ox = 0; ox < inner.begin; ++ox) border(ox);
  const int count = inner.end - inner.begin, runs = (count + kRun - 1) / kRun;
  for (int r = 0; r < runs; ++r) {
    const int ox = inner.begin + count * r / runs, np = inner.begin + count * (r + 1) / runs - ox;
    const int ix0 = ox * S - g.pad_left;
    float* out = out_row + size_t(ox) * pixel;
    switch (np) {  // np <= kRun: stride-2 rows never reach the cases above 4
      case 8: Kernel::template run<(S == 1 ? 8 : 4), S, KY0, KY1, 0, 3>(g, input, iy0, ix0, weights, bias, act, out); break;
      case 7: Kernel::template run<(S == 1 ? 7 : 4), S, KY0, KY1, 0, 3>(g, input, iy0, ix0, weights, bias, act, out); break;
      case 6: Kernel::template run<(S == 1 ? 6 : 4), S, KY0, KY1, 0, 3>(g, input, iy0, ix0, weights, bias, act, out); break;
      case 5: Kernel::template run<(S == 1 ? 5 : 4), S, KY0, KY1, 0, 3>(g, input, iy0, ix0, weights, bias, act, out); break;
      case 4: Kernel::template run<4, S, KY0, KY1, 0, 3>(g, input, iy0, ix0, weights, bias, act, out); break;
      case 3: Kernel::template run<3, S, KY0, KY1, 0, 3>(g, input, iy0, ix0, weights, bias, act, out); break;
      case 2: Kernel::template run<2, S, KY0, KY1, 0, 3>(g, input, iy0, ix0, weights, bias, act, out); break;
      default: Kernel::template run<1, S, KY0, KY1, 0, 3>(g, input, iy0, ix0, weights, bias, act, out); break;
    }
  }
  for (int ox = inner.end; ox < g.out_w; ++ox) border(ox);
}

// Row oy with its window rows clipped at compile time; false when the clip
// is not one of the three a 3-row window has in an image of 3+ rows.
template <typename Kernel, int S>
inline bool depthwise3x3_any_row(const ConvGeometry& g, const float* input, const float* weights,
                                 const float* bias, Activation act, float* out_row, int oy,
                                 ColumnRange inner) {
  const TapRange rows = inside_rows(g, oy);
  if (rows.begin == 0 && rows.end == 3)
    depthwise3x3_row<Kernel, S, 0, 3>(g, input, weights, bias, act, out_row, oy, inner);
  else if (rows.begin == 1 && rows.end == 3)
    depthwise3x3_row<Kernel, S, 1, 3>(g, input, weights, bias, act, out_row, oy, inner);
  else if (rows.begin == 0 && rows.end == 2)
    depthwise3x3_row<Kernel, S, 0, 2>(g, input, weights, bias, act, out_row, oy, inner);
  else
    return false;
  return true;
}

// Output rows [row_begin, row_end) of any depthwise conv: 3x3 stride 1/2
// rows through the runs, everything else through Kernel::pixel_row.
template <typename Kernel>
inline void depthwise_rows(const ConvGeometry& g, const float* input, const float* weights,
                           const float* bias, Activation act, float* output, int row_begin,
                           int row_end) {
  const bool fast = g.kernel_h == 3 && g.kernel_w == 3 && (g.stride == 1 || g.stride == 2) &&
                    g.in_w >= 3;
  const ColumnRange inner = fast ? interior_columns(g) : ColumnRange{};
  for (int oy = row_begin; oy < row_end; ++oy) {
    float* out_row = output + size_t(oy) * size_t(g.out_w) * size_t(g.out_c);
    const bool done =
        fast && (g.stride == 1
                     ? depthwise3x3_any_row<Kernel, 1>(g, input, weights, bias, act, out_row, oy, inner)
                     : depthwise3x3_any_row<Kernel, 2>(g, input, weights, bias, act, out_row, oy, inner));
    if (!done) Kernel::pixel_row(g, input, weights, bias, act, out_row, oy);
  }
}

}  // namespace featx
