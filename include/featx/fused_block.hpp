// featx/fused_block.hpp: one inverted-residual block in bands of output rows.
//
// For each band: the expanded rows it needs are computed into a per-thread
// scratch tile (rows the previous band already expanded are moved to the
// front, not recomputed), the depthwise conv writes the band's rows into a
// second tile, and the project conv (with the residual) writes the band
// straight into the block output. The full expanded map never exists, so it
// never leaves L2.
//
// Every value is produced by the same kernel call on the same inputs as in
// the unfused path (kernels compute each pixel independently of the tile it
// sits in), so fused and unfused results are bit-identical; tested.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "featx/kernels/kernel_set.hpp"
#include "featx/model.hpp"
#include "featx/detail/thread_team.hpp"
#include "featx/step_plan.hpp"

namespace featx {

struct FusedBlockArgs {
  const ConvLayer* expand = nullptr;  // null: the block has no expansion
  const ConvLayer* depthwise = nullptr;
  const ConvLayer* project = nullptr;
  ConvGeometry expand_geometry, depthwise_geometry, project_geometry;
  const float* input = nullptr;     // block input [H][W][in_c]
  const float* residual = nullptr;  // block input again when residual, else null
  float* output = nullptr;          // block output [H'][W'][out_c]
};

// Output rows [oy0, oy1) of a KxK conv as a small image of its own: the
// input rows they read, [in_begin, in_begin + geometry.in_h) clipped to the
// map, with the padding shifted to match, so a kernel run on rows
// [0, oy1 - oy0) of `geometry` computes exactly those rows.
struct RowWindow {
  ConvGeometry geometry;
  int in_begin = 0;
  int in_end() const { return in_begin + geometry.in_h; }
};

inline RowWindow window_rows(const ConvGeometry& full, int oy0, int oy1) {
  const int in_begin = std::max(0, oy0 * full.stride - full.pad_top);
  const int in_end = std::min(full.in_h, (oy1 - 1) * full.stride - full.pad_top + full.kernel_h);
  RowWindow w{full, in_begin};
  w.geometry.in_h = in_end - in_begin;
  w.geometry.pad_top = full.pad_top + in_begin - oy0 * full.stride;
  w.geometry.out_h = oy1 - oy0;
  return w;
}

// The expanded rows a scratch tile holds after a band, [begin, end) of the
// block's expanded map: the next band of the same thread reuses the overlap.
struct ExpandedRows {
  int begin = 0, end = 0;
};

// Output rows [oy0, oy1) (at most f.band_rows) of the block, through one
// scratch tile.
inline void run_fused_band(const KernelSet& k, const FusedBlock& f, const FusedBlockArgs& a, int oy0, int oy1,
                           float* scratch, ExpandedRows* held) {
  const ConvGeometry& gd = a.depthwise_geometry;
  const int channels = gd.in_c, width = gd.in_w;
  const size_t row_floats = size_t(width) * size_t(channels);
  float* expanded = scratch;
  float* dw_out = scratch + (f.expanded_floats + 15) / 16 * 16;
  const RowWindow window = window_rows(gd, oy0, oy1);
  const int need_begin = window.in_begin, need_end = window.in_end();
  const float* dw_in;
  if (a.expand) {
    // Rows [lo, hi) still to expand: the overlap with the rows the thread's
    // previous band expanded is moved into place instead (the band above
    // it when shares run front to back, below when back to front).
    int lo = need_begin, hi = need_end;
    if (need_begin >= held->begin && need_begin < held->end && need_end >= held->end) {
      std::memmove(expanded, expanded + size_t(need_begin - held->begin) * row_floats,
                   size_t(held->end - need_begin) * row_floats * sizeof(float));
      lo = held->end;
    } else if (need_end > held->begin && need_end <= held->end && need_begin <= held->begin) {
      std::memmove(expanded + size_t(held->begin - need_begin) * row_floats, expanded,
                   size_t(need_end - held->begin) * row_floats * sizeof(float));
      hi = held->begin;
    }
    if (hi > lo) {
      const ConvGeometry& ge = a.expand_geometry;
      float* dst = expanded + size_t(lo - need_begin) * row_floats;
      if (ge.kernel_h == 1 && ge.kernel_w == 1 && ge.stride == 1) {
        k.pointwise(a.input + size_t(lo) * size_t(width) * size_t(ge.in_c), 0, size_t(hi - lo) * size_t(width),
                    ge.in_c, a.expand->weights.data(), a.expand->bias.data(), channels, a.expand->activation,
                    nullptr, dst, 0, channels);
      } else {  // the stem: its rows [lo, hi) from the input rows they read
        const RowWindow stem = window_rows(ge, lo, hi);
        k.conv2d(stem.geometry, a.input + size_t(stem.in_begin) * size_t(ge.in_w) * size_t(ge.in_c),
                 a.expand->weights.data(), a.expand->bias.data(), a.expand->activation, dst, 0,
                 stem.geometry.out_h);
      }
    }
    held->begin = need_begin;
    held->end = need_end;
    dw_in = expanded;
  } else {
    dw_in = a.input + size_t(need_begin) * row_floats;
  }
  const ConvGeometry& g = window.geometry;
  k.depthwise(g, dw_in, a.depthwise->weights.data(), a.depthwise->bias.data(), a.depthwise->activation, dw_out, 0,
              g.out_h);
  const ConvGeometry& gp = a.project_geometry;
  const size_t pixel0 = size_t(oy0) * size_t(gp.out_w);
  k.pointwise(dw_out, 0, size_t(oy1 - oy0) * size_t(gp.out_w), channels, a.project->weights.data(),
              a.project->bias.data(), gp.out_c, a.project->activation,
              a.residual ? a.residual + pixel0 * size_t(gp.out_c) : nullptr, a.output + pixel0 * size_t(gp.out_c), 0,
              gp.out_c);
}

// Bands a block's rows run in: the fewest of at most f.band_rows rows that
// fit, spread evenly (14 rows in bands of at most 13 run as 7 + 7, not
// 13 + 1: a one-row band re-expands its halo and re-reads the project
// weights for a handful of pixels); with several threads at least
// kFusedBandsPerThread per thread, so a stalled thread's last bands can be
// taken over (detail/task_queues.hpp).
constexpr int kFusedBandsPerThread = 4;

inline int fused_bands(const FusedBlock& f, int rows, int threads) {
  int bands = (rows + f.band_rows - 1) / std::max(1, f.band_rows);
  if (threads > 1) bands = std::max(bands, std::min(rows, kFusedBandsPerThread * threads));
  return bands;
}

// Runs the whole block, band b being rows [rows*b/B, rows*(b+1)/B). With
// several threads in the team the bands are shared out
// (detail/thread_team.hpp), each thread through its own scratch tile
// (thread t's starts at scratch + t * scratch_stride floats).
inline void run_fused_block(const KernelSet& k, const FusedBlock& f, const FusedBlockArgs& a, detail::ThreadTeam& team,
                            float* scratch, size_t scratch_stride) {
  const int rows = a.depthwise_geometry.out_h;
  const int bands = fused_bands(f, rows, team.threads());
  team.run_tasks_with_state<ExpandedRows>(bands, [&](int64_t b, int t, ExpandedRows& held) {
    run_fused_band(k, f, a, int(int64_t(rows) * b / bands), int(int64_t(rows) * (b + 1) / bands),
                   scratch + size_t(t) * scratch_stride, &held);
  });
}

}  // namespace featx
