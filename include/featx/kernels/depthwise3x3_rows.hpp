// featx/kernels/depthwise3x3_rows.hpp: the walk over a row of a 3x3
// depthwise conv (stride 1 or 2) shared by the SIMD kernels; each ISA
// supplies only its run kernel and its per-pixel fallback.
//
// A row is cut into the border pixels, whose windows hang into the padding
// (run one at a time with the clipped columns as template parameters), and
// the interior, in runs of up to 8 (stride 1; stride-2 row pairs) or 4 (a
// lone stride-2 row) pixels spread evenly (54 = 5 x 8 + 2 x 7, not
// 6 x 8 + 6 x 1: a lone pixel is one FMA chain that waits on itself).
// Window rows in the padding are template parameters too, so a run's
// channel loop has no branches.
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
//     any kernel size, every tap checked;
//   static constexpr bool kPairRows;  and, when true,
//   template <int NP, int S>
//   static void run_pair(const ConvGeometry&, const float* input, int iy0, int ix0,
//                        const float* weights, const float* bias, Activation,
//                        float* out0, float* out1);
//     NP interior pixels of two consecutive stride-S rows whose windows are
//     whole (iy0: the first row's window), every channel: each input
//     vector loaded from the rows both windows share serves both (4 input
//     rows for 2 output rows at stride 1, 5 at stride 2, not 6), which took
//     1.2-1.35x off the stride-1 depthwise layers in isolation; at stride 2
//     the pair also runs 8 pixels, not 4, per load of the 9 weights.
// Their target attributes stay on them: this driver holds no vector values,
// so it is plain C++ and calls them (a call per run of pixels x channels).
#pragma once

#include <type_traits>

#include "featx/kernels/activation.hpp"
#include "featx/kernels/conv_interior.hpp"
#include "featx/kernels/conv_ref.hpp"

namespace featx {

// The pixels of row oy outside `inner`, whose windows hang into the side
// padding, one at a time with their clipped columns.
template <typename Kernel, int S, int KY0, int KY1>
inline void depthwise3x3_border_pixels(const ConvGeometry& g, const float* input,
                                       const float* weights, const float* bias, Activation act,
                                       float* out_row, int oy, ColumnRange inner) {
  const int iy0 = oy * S - g.pad_top;
  auto border = [&](int ox) {
    const int ix0 = ox * S - g.pad_left;
    const int kx0 = ix0 < 0 ? -ix0 : 0, kx1 = g.in_w - ix0 < 3 ? g.in_w - ix0 : 3;
    float* out = out_row + size_t(ox) * size_t(g.out_c);
    if (kx0 == 1 && kx1 == 3) Kernel::template run<1, S, KY0, KY1, 1, 3>(g, input, iy0, ix0, weights, bias, act, out);
    else if (kx0 == 0 && kx1 == 2) Kernel::template run<1, S, KY0, KY1, 0, 2>(g, input, iy0, ix0, weights, bias, act, out);
    else if (kx0 == 1 && kx1 == 2) Kernel::template run<1, S, KY0, KY1, 1, 2>(g, input, iy0, ix0, weights, bias, act, out);
    else if (kx0 == 0 && kx1 == 1) Kernel::template run<1, S, KY0, KY1, 0, 1>(g, input, iy0, ix0, weights, bias, act, out);
    else Kernel::template run<1, S, KY0, KY1, 2, 3>(g, input, iy0, ix0, weights, bias, act, out);  // kx0 == 2
  };
  for (int ox = 0; ox < inner.begin; ++ox) border(ox);
  for (int ox = inner.end; ox < g.out_w; ++ox) border(ox);
}

// Calls run(ox, np) for the interior pixels [inner.begin, inner.end) in
// runs of at most kRun, spread evenly.
template <int kRun, typename Run>
inline void for_each_interior_run(ColumnRange inner, Run&& run) {
  const int count = inner.end - inner.begin, runs = (count + kRun - 1) / kRun;
  for (int r = 0; r < runs; ++r) {
    const int ox = inner.begin + count * r / runs;
    run(ox, inner.begin + count * (r + 1) / runs - ox);
  }
}

// Calls f(std::integral_constant<int, np>{}) for a run length np in
// [1, kMax], so a run's pixel count is a template parameter; lengths above
// kMax are never instantiated (stride-2 runs stop at 4).
template <int kMax, typename F>
inline void with_run_length(int np, F&& f) {
  switch (np) {
    case 8: if constexpr (kMax >= 8) f(std::integral_constant<int, 8>{}); break;
    case 7: if constexpr (kMax >= 7) f(std::integral_constant<int, 7>{}); break;
    case 6: if constexpr (kMax >= 6) f(std::integral_constant<int, 6>{}); break;
    case 5: if constexpr (kMax >= 5) f(std::integral_constant<int, 5>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    default: f(std::integral_constant<int, 1>{}); break;
  }
}

template <typename Kernel, int S, int KY0, int KY1>
inline void depthwise3x3_row(const ConvGeometry& g, const float* input, const float* weights,
                             const float* bias, Activation act, float* out_row, int oy,
                             ColumnRange inner) {
  constexpr int kRun = S == 1 ? 8 : 4;
  const int iy0 = oy * S - g.pad_top;
  depthwise3x3_border_pixels<Kernel, S, KY0, KY1>(g, input, weights, bias, act, out_row, oy, inner);
  for_each_interior_run<kRun>(inner, [&](int ox, int np) {
    const int ix0 = ox * S - g.pad_left;
    float* out = out_row + size_t(ox) * size_t(g.out_c);
    with_run_length<kRun>(np, [&](auto n) {
      Kernel::template run<decltype(n)::value, S, KY0, KY1, 0, 3>(g, input, iy0, ix0, weights,
                                                                  bias, act, out);
    });
  });
}

// Rows oy and oy + 1 of a stride-S conv, both with whole windows: border
// pixels one row at a time, the interior through run_pair.
template <typename Kernel, int S>
inline void depthwise3x3_row_pair(const ConvGeometry& g, const float* input,
                                  const float* weights, const float* bias, Activation act,
                                  float* out_row0, float* out_row1, int oy, ColumnRange inner) {
  depthwise3x3_border_pixels<Kernel, S, 0, 3>(g, input, weights, bias, act, out_row0, oy, inner);
  depthwise3x3_border_pixels<Kernel, S, 0, 3>(g, input, weights, bias, act, out_row1, oy + 1, inner);
  const int iy0 = oy * S - g.pad_top;
  for_each_interior_run<8>(inner, [&](int ox, int np) {
    const int ix0 = ox * S - g.pad_left;
    const size_t at = size_t(ox) * size_t(g.out_c);
    float* out0 = out_row0 + at;
    float* out1 = out_row1 + at;
    with_run_length<8>(np, [&](auto n) {
      Kernel::template run_pair<decltype(n)::value, S>(g, input, iy0, ix0, weights, bias, act,
                                                       out0, out1);
    });
  });
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
  const size_t row_floats = size_t(g.out_w) * size_t(g.out_c);
  for (int oy = row_begin; oy < row_end; ++oy) {
    float* out_row = output + size_t(oy) * row_floats;
    if constexpr (Kernel::kPairRows) {
      auto whole = [&](int y) {
        const TapRange r = inside_rows(g, y);
        return r.begin == 0 && r.end == 3;
      };
      if (fast && oy + 1 < row_end && whole(oy) && whole(oy + 1)) {
        if (g.stride == 1)
          depthwise3x3_row_pair<Kernel, 1>(g, input, weights, bias, act, out_row, out_row + row_floats,
                                           oy, inner);
        else
          depthwise3x3_row_pair<Kernel, 2>(g, input, weights, bias, act, out_row, out_row + row_floats,
                                           oy, inner);
        ++oy;
        continue;
      }
    }
    const bool done =
        fast && (g.stride == 1
                     ? depthwise3x3_any_row<Kernel, 1>(g, input, weights, bias, act, out_row, oy, inner)
                     : depthwise3x3_any_row<Kernel, 2>(g, input, weights, bias, act, out_row, oy, inner));
    if (!done) Kernel::pixel_row(g, input, weights, bias, act, out_row, oy);
  }
}

}  // namespace featx
