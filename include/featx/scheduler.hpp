// featx/scheduler.hpp: which thread runs what, inside a caller's workspace.
//
// Threads: with a batch of at least as many images as threads, images are
// spread over the threads (one arena each); otherwise each layer's output
// rows (or pixel tiles) are cut into tasks that the threads share out
// (detail/task_queues.hpp: a stalled thread's tasks are taken over), the
// threads staying in one OpenMP region for the whole batch
// (detail/thread_team.hpp) and running consecutive fused blocks as one
// dataflow (fused_chain.hpp). A thread that runs several images runs the
// last, small-map blocks over up to kMaxGroupImages of them at once
// (step_plan.hpp, image groups). No reduction is ever split between
// threads or reordered (a chunked block stores a partial sum and continues
// it in order), so every output value is computed by the same operations in
// the same order whatever the thread count or batch: results are
// bit-identical for 1, 2 or N threads, and run to run.
//
// Memory: everything a run touches besides the model and the plan lives in
// one workspace laid out by WorkspaceLayout: an arena (and a group arena)
// per image in flight, a scratch tile per thread for fused blocks, and a
// small head buffer per worker, and the shared state of a chain of fused
// blocks (fused_chain.hpp) when threads share an image. Nothing here
// allocates.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "featx/chunked_block.hpp"
#include "featx/detail/checked_size.hpp"
#include "featx/detail/parallel.hpp"
#include "featx/detail/thread_team.hpp"
#include "featx/fused_block.hpp"
#include "featx/fused_chain.hpp"
#include "featx/kernels/kernel_set.hpp"
#include "featx/model.hpp"
#include "featx/step_plan.hpp"

namespace featx {

// Images one thread runs through the grouped tail together: 4 reads a 7x7
// layer's weights a quarter as often; the group's maps, 0.7 MB per image,
// stay near L2.
constexpr int kMaxGroupImages = 4;

// Tasks per thread a layer split by rows or channels is cut into: enough
// that a thread slowed by a neighbour hands its last ones to the others
// (detail/task_queues.hpp), few enough that each still reads a long run of
// rows or weight panels.
constexpr int64_t kTasksPerThread = 4;

// How a batch of n images is spread over `threads` threads.
struct Schedule {
  bool images_in_parallel = false;  // one image per thread at a time
  int workers = 1;                  // images in flight (arenas)
  int threads_per_image = 1;        // threads splitting each layer
  int group_images = 1;             // images one worker runs through the tail together
};

// Profiling times each step, which needs the threads inside one image.
inline Schedule schedule_for(int threads, int n, bool profile) {
  Schedule s;
  s.images_in_parallel = threads > 1 && n >= threads && !profile;
  s.workers = s.images_in_parallel ? threads : 1;
  s.threads_per_image = s.images_in_parallel ? 1 : threads;
  // A plan made for full groups also runs fewer images per worker (a
  // group of one gives the same values), so batch sizes 2..N share it.
  if (s.threads_per_image == 1 && (n + s.workers - 1) / s.workers > 1) s.group_images = kMaxGroupImages;
  return s;
}

// Offsets (in floats, from a 64-byte aligned base) of a run's buffers.
struct WorkspaceLayout {
  size_t arena_floats = 0, group_arena_floats = 0, scratch_floats = 0, head_floats = 0;  // each
  size_t sync_floats = 0;  // one: a fused chain's shared state
  int arenas = 0, scratch_tiles = 0;

  static size_t round16(size_t floats) { return (floats + 15) / 16 * 16; }
  size_t arena(int i) const { return size_t(i) * arena_floats; }
  size_t group_arena(int i) const { return size_t(arenas) * arena_floats + size_t(i) * group_arena_floats; }
  size_t scratch(int t) const {
    return size_t(arenas) * (arena_floats + group_arena_floats) + size_t(t) * scratch_floats;
  }
  size_t head(int w) const { return scratch(scratch_tiles) + size_t(w) * head_floats; }
  size_t sync() const { return head(arenas); }
  size_t total_floats() const { return sync() + sync_floats; }
  // With the slack that lets any caller buffer be aligned to 64 bytes.
  size_t bytes() const { return total_floats() * sizeof(float) + 64; }
  // False when bytes() would wrap size_t (32-bit targets): the same sum, checked.
  bool addressable() const {
    detail::SizeCheck size;
    const size_t per_arena = size.add(size.add(arena_floats, group_arena_floats), head_floats);
    const size_t floats = size.add(size.add(size.mul(size_t(arenas), per_arena), size.mul(size_t(scratch_tiles), scratch_floats)),
                                   sync_floats);
    size.add(size.mul(floats, sizeof(float)), 64);
    return !size.overflow;
  }
};

inline WorkspaceLayout workspace_layout(const StepPlan& plan, const Schedule& s, int threads,
                                        size_t head_floats) {
  WorkspaceLayout l;
  l.arenas = s.workers;
  l.arena_floats = WorkspaceLayout::round16(plan.arena_floats());
  l.group_arena_floats = WorkspaceLayout::round16(plan.group_arena_floats());
  l.scratch_tiles = plan.scratch_floats() ? threads : 0;
  l.scratch_floats = WorkspaceLayout::round16(plan.scratch_floats());
  l.head_floats = WorkspaceLayout::round16(head_floats);
  l.sync_floats = WorkspaceLayout::round16((chain_sync_bytes(plan, s.threads_per_image) + 3) / 4);
  return l;
}

// The 64-byte aligned start of a workspace of layout.bytes() bytes.
inline float* aligned_workspace(void* workspace) {
  const uintptr_t p = (reinterpret_cast<uintptr_t>(workspace) + 63) / 64 * 64;
  return reinterpret_cast<float*>(p);
}

// Runs one StepPlan over a batch inside a workspace.
class BatchRunner {
 public:
  BatchRunner(const Model& model, const KernelSet& kernels, const StepPlan& plan,
              const std::vector<ChunkWeights>& chunk_weights, const Schedule& schedule,
              const WorkspaceLayout& layout, float* workspace, double* step_ms)
      : model_(model), k_(kernels), plan_(plan), chunk_weights_(chunk_weights), schedule_(schedule),
        layout_(layout), workspace_(workspace), step_ms_(step_ms) {}

  // Runs every image and calls finish(image, result, head_buffer) with its
  // last step's output (in the worker's arenas, valid until the worker's
  // next group) and the worker's head buffer. Worker w takes images
  // w, w + W, ... in groups of the plan's group size.
  template <typename Finish>
  void run_batch(const float* images, int n, Finish finish) {
    const int workers = schedule_.workers;
    const size_t image_floats = size_t(plan_.height()) * size_t(plan_.width()) * 3;
    auto work = [&](int w, detail::ThreadTeam& team) {
      float* head = workspace_ + layout_.head(w);
      int ids[kMaxGroupImages];
      int count = 0;
      for (int i = w; i < n; i += workers) {
        ids[count++] = i;
        if (count < plan_.group_images() && i + workers < n) continue;
        if (plan_.group_images() == 1) {
          finish(i, forward(images + size_t(i) * image_floats, w, team), head);
        } else {
          float* group = workspace_ + layout_.group_arena(w);
          const size_t start = plan_.group_start();
          const PlanStep& first = plan_.steps()[start];
          const size_t in_floats = size_t(first.geometry.in_h) * size_t(first.geometry.in_w) *
                                   size_t(first.geometry.in_c);
          float* tail_input = group + plan_.group_slot_offset(first.input_slot);
          for (int g = 0; g < count; ++g) {
            const float* out = forward(images + size_t(ids[g]) * image_floats, w, team, start);
            std::copy(out, out + in_floats, tail_input + size_t(g) * in_floats);
          }
          const float* result = run_steps(group, true, start, plan_.steps().size(), count, team, w);
          const size_t out_floats = plan_.output_shape().elements();
          for (int g = 0; g < count; ++g) finish(ids[g], result + size_t(g) * out_floats, head);
        }
        count = 0;
      }
    };
    if (schedule_.images_in_parallel) {
      FEATX_OMP(parallel for num_threads(workers) schedule(static, 1))
      for (int w = 0; w < workers; ++w) {
        detail::ThreadTeam solo(1);
        work(w, solo);
      }
    } else {
      // The threads of one image stay in one region for the whole batch
      // (detail/thread_team.hpp), not one region per step.
      detail::ThreadTeam team(schedule_.threads_per_image);
      team.run([&] { work(0, team); });
    }
  }

 private:
  using Clock = std::chrono::steady_clock;

  void add_time(size_t step, Clock::time_point t0) {
    if (step_ms_) step_ms_[step] += std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  }

  // Normalises one image into arena `arena_index`, runs steps [0, last)
  // there and returns the last one's output (inside that arena).
  const float* forward(const float* image, int arena_index, detail::ThreadTeam& team, size_t last = size_t(-1)) {
    float* arena = workspace_ + layout_.arena(arena_index);
    float* input = arena + plan_.slot_offset(kSlotInput);
    const float scale = model_.input_scale(), offset = model_.input_offset();
    // In row blocks shared by the team: alone it was ~1% of a two-thread pass.
    const int64_t rows = plan_.height(), tasks = std::min<int64_t>(rows, kTasksPerThread * team.threads());
    const size_t row_floats = size_t(plan_.width()) * 3;
    team.run_tasks(tasks, [&](int64_t t, int) {
      const size_t end = size_t(rows * (t + 1) / tasks) * row_floats;
      for (size_t i = size_t(rows * t / tasks) * row_floats; i < end; ++i) input[i] = scale * image[i] + offset;
    });
    return run_steps(arena, false, 0, std::min(last, plan_.steps().size()), 1, team, arena_index);
  }

  // A fused block's layers and buffers; slot(s) is the arena's slot s.
  template <typename Slot>
  FusedBlockArgs fused_args(const FusedBlock& f, Slot slot) const {
    const auto& layers = model_.layers();
    const PlanStep& first = plan_.steps()[size_t(f.expand_step >= 0 ? f.expand_step : f.depthwise_step)];
    const PlanStep& dw = plan_.steps()[size_t(f.depthwise_step)];
    const PlanStep& pr = plan_.steps()[size_t(f.project_step)];
    FusedBlockArgs a;
    if (f.expand_step >= 0) {
      const PlanStep& ex = plan_.steps()[size_t(f.expand_step)];
      a.expand = &layers[size_t(ex.layer)];
      a.expand_geometry = ex.geometry;
    }
    a.depthwise = &layers[size_t(dw.layer)];
    a.depthwise_geometry = dw.geometry;
    a.project = &layers[size_t(pr.layer)];
    a.project_geometry = pr.geometry;
    a.input = slot(first.input_slot);
    a.residual = pr.residual_slot >= 0 ? slot(pr.residual_slot) : nullptr;
    a.output = slot(pr.output_slot);
    return a;
  }

  // Runs steps [first, last) on `images` images stacked in each slot of
  // `arena` (the group arena when `grouped`, else an image arena). Only the
  // head (one image) holds fused blocks. Returns the last step's output.
  const float* run_steps(float* arena, bool grouped, size_t first, size_t last, int images,
                         detail::ThreadTeam& team, int arena_index) {
    const int threads = team.threads();
    auto slot = [&](int s) {
      return arena + (grouped ? plan_.group_slot_offset(s) : plan_.slot_offset(s));
    };
    const float* out = slot(plan_.steps()[first].input_slot);
    const KernelSet k = k_;
    const auto& fused = plan_.fused_blocks();
    size_t next_fused = 0;
    while (next_fused < fused.size() && size_t(fused[next_fused].project_step) < first) ++next_fused;
    const auto& chunked = plan_.chunked_blocks();
    size_t next_chunked = 0;
    for (size_t si = first; si < last; ++si) {
      const PlanStep& step = plan_.steps()[si];
      const Clock::time_point t0 = step_ms_ ? Clock::now() : Clock::time_point();
      while (next_chunked < chunked.size() && size_t(chunked[next_chunked].expand_step) < si) ++next_chunked;
      if (grouped && next_chunked < chunked.size() && size_t(chunked[next_chunked].expand_step) == si &&
          size_t(chunked[next_chunked].project_step) < last) {
        const ChunkedBlock& c = chunked[next_chunked];
        run_chunked_block(k, model_, plan_, c, chunk_weights_[next_chunked], arena, images);
        si = size_t(c.project_step);
        add_time(si, t0);
        out = slot(plan_.steps()[si].output_slot);
        continue;
      }
      if (next_fused < fused.size() &&
          int(si) == (fused[next_fused].expand_step >= 0 ? fused[next_fused].expand_step
                                                         : fused[next_fused].depthwise_step)) {
        const FusedBlock& f = fused[next_fused++];
        // Threads inside an image use tiles 0..threads-1; a worker running
        // its own image uses the tile of its index.
        float* scratch = workspace_ + layout_.scratch(threads > 1 ? 0 : arena_index);
        if (threads > 1 && layout_.sync_floats && !step_ms_) {
          // The fused blocks that follow run as one dataflow (profiling
          // times block by block instead).
          FusedChainBlock chain[kMaxChainBlocks];
          int n = 0;
          chain[n++] = FusedChainBlock{&f, fused_args(f, slot)};
          while (n < kMaxChainBlocks && next_fused < fused.size()) {
            const FusedBlock& g = fused[next_fused];
            const int g_first = g.expand_step >= 0 ? g.expand_step : g.depthwise_step;
            const FusedBlockArgs ga = fused_args(g, slot);
            if (g_first != chain[n - 1].block->project_step + 1 || size_t(g.project_step) >= last ||
                !may_chain(chain[n - 1].args, ga))
              break;
            chain[n++] = FusedChainBlock{&g, ga};
            ++next_fused;
          }
          run_fused_chain(k, chain, n, team, scratch, layout_.scratch_floats, workspace_ + layout_.sync());
          si = size_t(chain[n - 1].block->project_step);
          out = chain[n - 1].args.output;
          continue;
        }
        const FusedBlockArgs a = fused_args(f, slot);
        run_fused_block(k, f, a, team, scratch, layout_.scratch_floats);
        si = size_t(f.project_step);
        add_time(si, t0);
        out = a.output;
        continue;
      }
      const ConvLayer& layer = model_.layers()[size_t(step.layer)];
      const ConvGeometry& g = step.geometry;
      const float* src = slot(step.input_slot);
      float* dst = slot(step.output_slot);
      const float* residual = step.residual_slot >= 0 ? slot(step.residual_slot) : nullptr;
      const float* w = layer.weights.data();
      const float* b = layer.bias.data();
      const Activation act = layer.activation;
      if (g.kernel_h == 1 && g.kernel_w == 1 && g.stride == 1 && !layer.depthwise) {
        // One thread takes pixels in blocks whose inputs fit in half of L2
        // (the plan's pointwise_block_bytes, tuning.hpp; the whole 7x7 map
        // of a group or image): the kernel walks the
        // weights a column panel at a time over a block's pixels, so each
        // panel is read once per block. 48-pixel tasks streamed all the
        // weights again per task (1.6 MB for Conv_1) and cut a 49-pixel
        // map into 48 + 1.
        // Several threads share tasks of 48 pixels (a multiple of the 12-
        // and 6-row register tiles) with all channels. A small map (the 7x7
        // layers' 49 pixels) is split by output channels instead, in tasks
        // of whole 16-column panels (160 -> 5 + 5 panels per thread), so
        // threads get equal work rather than 48 pixels and 1, and each
        // reads only its share of the weights.
        const int64_t out_pixels = int64_t(images) * g.out_h * g.out_w;  // images stacked
        const int64_t pixel_tasks = (out_pixels + 47) / 48;
        if (threads <= 1) {
          const int64_t block = std::max<int64_t>(
              48, int64_t(plan_.pointwise_block_bytes() / (sizeof(float) * size_t(g.in_c))));
          const int64_t blocks = (out_pixels + block - 1) / block;
          for (int64_t i = 0; i < blocks; ++i)
            k.pointwise(src, size_t(out_pixels * i / blocks), size_t(out_pixels * (i + 1) / blocks),
                        g.in_c, w, b, g.out_c, act, residual, dst, 0, g.out_c);
        } else if (pixel_tasks < 4 * threads) {
          const int64_t panels = int64_t(padded_columns(g.out_c) / kPanelWidth);
          const int64_t tasks = std::min<int64_t>(panels, kTasksPerThread * threads);
          team.run_tasks(tasks, [&](int64_t i, int) {
            const int c0 = int(std::min<int64_t>(g.out_c, panels * i / tasks * kPanelWidth));
            const int c1 = int(std::min<int64_t>(g.out_c, panels * (i + 1) / tasks * kPanelWidth));
            if (c1 > c0)
              k.pointwise(src, 0, size_t(out_pixels), g.in_c, w, b, g.out_c, act, residual, dst, c0, c1);
          });
        } else {
          team.run_tasks(pixel_tasks, [&](int64_t pt, int) {
            k.pointwise(src, size_t(pt * 48), size_t(std::min((pt + 1) * 48, out_pixels)), g.in_c, w, b,
                        g.out_c, act, residual, dst, 0, g.out_c);
          });
        }
      } else {
        const ConvKernel conv = layer.depthwise ? k.depthwise : k.conv2d;
        const size_t in_floats = size_t(g.in_h) * size_t(g.in_w) * size_t(g.in_c);
        const size_t out_floats = size_t(g.out_h) * size_t(g.out_w) * size_t(g.out_c);
        for (int img = 0; img < images; ++img) {
          const float* image_src = src + size_t(img) * in_floats;
          float* image_dst = dst + size_t(img) * out_floats;
          // Rows in pairs (a kernel may take rows two at a time: depthwise
          // on AVX-512), kTasksPerThread tasks per thread. One thread enters
          // no OpenMP region: libgomp allocates a team even for a
          // serialised one.
          if (threads <= 1) {
            conv(g, image_src, w, b, act, image_dst, 0, g.out_h);
            continue;
          }
          const int64_t pairs = (int64_t(g.out_h) + 1) / 2;
          const int64_t tasks = std::min<int64_t>(pairs, kTasksPerThread * threads);
          team.run_tasks(tasks, [&](int64_t i, int) {
            const int r0 = int(std::min<int64_t>(g.out_h, pairs * i / tasks * 2));
            const int r1 = int(std::min<int64_t>(g.out_h, pairs * (i + 1) / tasks * 2));
            conv(g, image_src, w, b, act, image_dst, r0, r1);
          });
        }
      }
      add_time(si, t0);
      out = dst;
    }
    return out;
  }

  const Model& model_;
  const KernelSet& k_;
  const StepPlan& plan_;
  const std::vector<ChunkWeights>& chunk_weights_;
  Schedule schedule_;
  WorkspaceLayout layout_;
  float* workspace_;
  double* step_ms_;
};

}  // namespace featx
