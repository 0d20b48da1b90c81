// featx/kernels/conv_interior.hpp: which taps of a KxK window fall inside
// the input, so SIMD kernels can run the interior of a row without a bounds
// check per tap and leave only the padded border to a careful path.
#pragma once

#include "featx/kernels/conv_ref.hpp"

namespace featx {

// Output columns [begin, end) whose kernel_w taps are all inside the input.
struct ColumnRange {
  int begin = 0, end = 0;
};

inline ColumnRange interior_columns(const ConvGeometry& g) {
  ColumnRange r;
  r.begin = (g.pad_left + g.stride - 1) / g.stride;  // first ox with ox*s - pad >= 0
  const int last_start = g.in_w - g.kernel_w + g.pad_left;  // ox*s <= this
  r.end = last_start < 0 ? 0 : last_start / g.stride + 1;
  if (r.end > g.out_w) r.end = g.out_w;
  if (r.begin > r.end) r.begin = r.end;
  return r;
}

// Kernel rows [begin, end) inside the input for output row oy.
struct TapRange {
  int begin = 0, end = 0;
};

inline TapRange inside_rows(const ConvGeometry& g, int oy) {
  const int iy0 = oy * g.stride - g.pad_top;
  TapRange r;
  r.begin = iy0 < 0 ? -iy0 : 0;
  r.end = g.in_h - iy0 < g.kernel_h ? g.in_h - iy0 : g.kernel_h;
  if (r.end < r.begin) r.end = r.begin;
  return r;
}

}  // namespace featx
