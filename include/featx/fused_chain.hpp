// featx/fused_chain.hpp: consecutive fused blocks run as one dataflow by
// the threads that share an image.
//
// Run block by block, the threads meet after every block: the one that
// ends its share first waits for the other's last band (5-10 us a block on
// a 2-core Zen 5, one band's time; the whole block's when the other's core
// is taken). In a chain, a thread that runs out of a block's bands goes on
// to the next block at once: a band of block s waits only for the bands of
// block s - 1 whose rows it reads (a flag per band, stored with release
// after the band's outputs, loaded with acquire), and the threads meet once,
// after the last block. Shares alternate direction (task_queues.hpp), so a
// thread starts each block at its far edge, on rows of its own, and reaches
// the rows next to the other thread's last.
//
// Memory: block s writes the slot block s - 2 read (three block slots in
// turn, step_plan.hpp), so no band of block s starts before block s - 2 is
// wholly done; with that, no band ever writes memory a running band reads.
// Each band runs the same kernel calls on the same inputs as block by
// block, so results are bit-identical for every thread count and timing.
//
// The shared state (task shares, done counts, band flags) lives in the
// caller's workspace, chain_sync_bytes() of it: nothing here allocates.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>

#include "featx/detail/task_queues.hpp"
#include "featx/detail/thread_team.hpp"
#include "featx/fused_block.hpp"
#include "featx/step_plan.hpp"

namespace featx {

// Blocks one chain runs at most (MobileNetV2 fuses 14 at 224); a longer run
// of fused blocks is cut into several chains.
constexpr int kMaxChainBlocks = 32;

struct FusedChainBlock {
  const FusedBlock* block = nullptr;
  FusedBlockArgs args;
};

namespace detail {

struct alignas(64) BandsDone {  // one cache line: every band adds to it
  std::atomic<int> count{0};
};
using BandFlag = std::atomic<unsigned char>;
static_assert(sizeof(BandFlag) == 1, "one byte per band");

// The band of `bands` over `rows` rows that holds row r (bands are rows
// [rows*b/bands, rows*(b+1)/bands), as in run_fused_block).
inline int band_of_row(int r, int rows, int bands) {
  return int((int64_t(r + 1) * bands - 1) / rows);
}

}  // namespace detail

// The workspace bytes run_fused_chain needs for any chain of the plan's
// fused blocks with up to `threads` threads (0 for one thread).
inline size_t chain_sync_bytes(const StepPlan& plan, int threads) {
  if (threads <= 1 || plan.fused_blocks().empty()) return 0;
  size_t bands = 0;
  for (const FusedBlock& f : plan.fused_blocks())
    bands += size_t(fused_bands(f, plan.steps()[size_t(f.depthwise_step)].geometry.out_h, threads));
  const size_t blocks = plan.fused_blocks().size();
  return blocks * size_t(detail::task_shares(threads)) * sizeof(detail::TaskShare) +
         blocks * sizeof(detail::BandsDone) + (bands + 63) / 64 * 64;
}

// Whether `next` may start while `prev` runs: it must not write what
// `prev` reads (with two alternating block slots it would).
inline bool may_chain(const FusedBlockArgs& prev, const FusedBlockArgs& next) {
  return next.output != prev.input && next.output != prev.residual && next.input == prev.output;
}

// Runs blocks[0, count) (each may_chain after the one before) across the
// team; thread t's scratch tile starts at scratch + t * scratch_stride.
// `sync` is 64-byte aligned, chain_sync_bytes() of the plan.
inline void run_fused_chain(const KernelSet& k, const FusedChainBlock* blocks, int count, detail::ThreadTeam& team,
                            float* scratch, size_t scratch_stride, void* sync) {
  const int threads = team.threads(), shares = detail::task_shares(threads);
  int rows[kMaxChainBlocks], bands[kMaxChainBlocks];
  size_t first_flag[kMaxChainBlocks];
  size_t flags = 0;
  for (int s = 0; s < count; ++s) {
    rows[s] = blocks[s].args.depthwise_geometry.out_h;
    bands[s] = fused_bands(*blocks[s].block, rows[s], threads);
    first_flag[s] = flags;
    flags += size_t(bands[s]);
  }
  unsigned char* bytes = static_cast<unsigned char*>(sync);
  detail::TaskShare* queue = reinterpret_cast<detail::TaskShare*>(bytes);
  detail::BandsDone* done = reinterpret_cast<detail::BandsDone*>(bytes + size_t(count) * size_t(shares) * sizeof(detail::TaskShare));
  detail::BandFlag* flag = reinterpret_cast<detail::BandFlag*>(reinterpret_cast<unsigned char*>(done + count));
  for (int s = 0; s < count; ++s) {
    for (int q = 0; q < shares; ++q) new (&queue[size_t(s) * size_t(shares) + size_t(q)]) detail::TaskShare();
    detail::deal_tasks(&queue[size_t(s) * size_t(shares)], shares, bands[s]);
    new (&done[s]) detail::BandsDone();
  }
  for (size_t i = 0; i < flags; ++i) new (&flag[i]) detail::BandFlag(0);

  // Published by run_on_each with release: the helpers see the state above.
  team.run_on_each([&](int t) {
    float* tile = scratch + size_t(t) * scratch_stride;
    for (int s = 0; s < count; ++s) {
      const FusedChainBlock& c = blocks[s];
      detail::TaskShare* own = &queue[size_t(s) * size_t(shares)];
      ExpandedRows held;  // a new block: nothing expanded yet
      bool slot_free = s < 2;
      for (int64_t b = detail::next_task(own, shares, t); b >= 0; b = detail::next_task(own, shares, t)) {
        const int oy0 = int(int64_t(rows[s]) * b / bands[s]), oy1 = int(int64_t(rows[s]) * (b + 1) / bands[s]);
        if (!slot_free) {
          const detail::BandsDone& before = done[s - 2];
          detail::wait_until([&] { return before.count.load(std::memory_order_acquire) == bands[s - 2]; });
          slot_free = true;
        }
        if (s > 0) {  // the rows of block s - 1 this band reads (its expand's or depthwise's input)
          const RowWindow window = window_rows(c.args.depthwise_geometry, oy0, oy1);
          const int lo = detail::band_of_row(window.in_begin, rows[s - 1], bands[s - 1]);
          const int hi = detail::band_of_row(window.in_end() - 1, rows[s - 1], bands[s - 1]);
          const detail::BandFlag* ready = flag + first_flag[s - 1];
          for (int i = lo; i <= hi; ++i)
            detail::wait_until([&] { return ready[i].load(std::memory_order_acquire) != 0; });
        }
        run_fused_band(k, *c.block, c.args, oy0, oy1, tile, &held);
        flag[first_flag[s] + size_t(b)].store(1, std::memory_order_release);
        done[s].count.fetch_add(1, std::memory_order_release);
      }
    }
  });
}

}  // namespace featx
