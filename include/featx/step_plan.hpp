// featx/step_plan.hpp: the steps and buffer layout for one input size and thread split.
//
// A StepPlan maps a Model and an input height x width to a list of conv steps,
// each with its geometry (TF SAME padding) and the arena slots it reads and
// writes. The arena is one float buffer sized up front: running a plan
// allocates nothing. Slots: the normalised input, the block input/output
// buffers (two that alternate; three in turn when threads share an image,
// so that a block can start while the one before it still reads its input:
// fused_chain.hpp), the expanded map and the depthwise output.
//
// Fusion: an inverted-residual block whose three steps are all in the plan
// runs fused (fused_block.hpp): a band of output rows at a time, its
// expanded and depthwise rows live in a per-thread scratch tile sized to
// stay in L2, so the full expanded map is never written. Only unfused
// blocks (an intermediate layer requested inside a block) need the full
// expanded and depthwise slots.
//
// Image groups: when one thread runs several images of a batch, the last
// blocks (maps of at most kGroupedMaxPixels pixels, the 7x7 end of a 224
// input) run layer by layer over a group of images stacked in a group
// arena, [images][H][W][C] per slot. A 1x1 conv then is one GEMM over all
// the group's pixels, so its weights (0.5-1.6 MB per layer there, more
// than the maps) are read once per group instead of once per image.
//
// Chunked blocks: a block of the grouped tail with an expansion runs a
// chunk of its expanded channels at a time: the expand conv's columns of
// the chunk, the depthwise conv on them, then the project conv's rows of
// the chunk, continuing each output's FMA chain from the value the earlier
// chunks stored (the kernels' bias-null mode). The group's expanded and
// depthwise maps (0.75 MB each for 4 images of 7x7x960) never exist in
// full, so they, the project's partial sums and a chunk's weights stay in
// L2 together. Same bits as layer by layer on the float ISAs.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "featx/detail/checked_size.hpp"
#include "featx/kernels/conv_ref.hpp"
#include "featx/kernels/padding.hpp"
#include "featx/model.hpp"
#include "featx/status.hpp"
#include "featx/tuning.hpp"

namespace featx {

struct TensorShape {
  int height = 0, width = 0, channels = 0;
  size_t elements() const { return size_t(height) * size_t(width) * size_t(channels); }
};

enum ArenaSlot { kSlotInput = 0, kSlotBlockA, kSlotBlockB, kSlotBlockC, kSlotExpanded, kSlotDepthwise, kSlotCount };

struct PlanStep {
  int layer = -1;          // index into Model::layers()
  ConvGeometry geometry;
  int input_slot = -1, output_slot = -1;
  int residual_slot = -1;  // slot added to the output (fused residual), or -1
};

// A block run in row bands; indices into StepPlan::steps().
struct FusedBlock {
  int expand_step = -1;  // -1: the block has no expansion; 0: the stem conv
  int depthwise_step = -1, project_step = -1;
  int band_rows = 1;     // output rows per band
  size_t expanded_floats = 0, depthwise_floats = 0;  // per-thread scratch
};

// A grouped-tail block run in chunks of expanded channels; indices into
// StepPlan::steps().
struct ChunkedBlock {
  int expand_step = -1, depthwise_step = -1, project_step = -1;
  int chunk_channels = 0;  // a multiple of kChunkAlign; the last chunk may be narrower
};

// Chunks start on a packed weight panel (kernels/packed_weights.hpp).
constexpr int kChunkAlign = 16;

// With N threads, blocks with fewer than this many input rows per thread
// run unfused (see StepPlan::make).
constexpr int kMinFusedRowsPerThread = 4;

// Blocks whose input map has at most this many pixels run over image
// groups (see above); larger maps would not stay in L2 for several images.
constexpr int kGroupedMaxPixels = 64;

class StepPlan {
 public:
  // Builds the plan for `height` x `width` inputs. When `stop_after` names a
  // layer or block, steps end there (intermediate outputs). `threads`
  // share one image; `group_images` > 1 images run together through the
  // grouped tail, whose blocks run in chunks of `chunk_channels` expanded
  // channels (rounded up to kChunkAlign) when it is > 0. `tuning` sizes
  // the fused bands and the 1x1 convs' pixel blocks (tuning.hpp).
  static Status make(const Model& model, int height, int width, const std::string& stop_after,
                     StepPlan* out, bool fuse_blocks = true, int threads = 1, int group_images = 1,
                     int chunk_channels = 0, const CacheTuning& tuning = CacheTuning{}) {
    if (height < 1 || width < 1)
      return invalid_argument("input size " + std::to_string(height) + "x" +
                              std::to_string(width) + " is empty");
    if (height > 16384 || width > 16384 || size_t(height) * size_t(width) > (size_t(1) << 26))
      return invalid_argument("input size " + std::to_string(height) + "x" +
                              std::to_string(width) + " is too large");
    StepPlan plan;
    plan.height_ = height;
    plan.pointwise_block_bytes_ = tuning.pointwise_block_bytes;
    plan.width_ = width;
    const auto& layers = model.layers();
    int stop_step = -1;
    if (!stop_after.empty()) {
      if (model.find_layer(stop_after) < 0 && model.find_block(stop_after) < 0)
        return not_found("no layer or block named '" + stop_after + "' in " + model.name());
    }

    TensorShape shape{height, width, 3};
    auto add_step = [&](int layer_index, int in_slot, int out_slot) {
      const ConvLayer& l = layers[size_t(layer_index)];
      PlanStep s;
      s.layer = layer_index;
      SamePadding py = same_padding(shape.height, l.kernel_h, l.stride);
      SamePadding px = same_padding(shape.width, l.kernel_w, l.stride);
      s.geometry = ConvGeometry{shape.height, shape.width, shape.channels, py.out, px.out,
                                l.out_channels, l.kernel_h, l.kernel_w, l.stride,
                                py.pad_before, px.pad_before};
      s.input_slot = in_slot;
      s.output_slot = out_slot;
      shape = TensorShape{py.out, px.out, l.out_channels};
      plan.steps_.push_back(s);
      if (stop_step < 0 && !stop_after.empty() && l.name == stop_after) stop_step = int(plan.steps_.size()) - 1;
    };

    // A -> B -> A alone; A -> B -> C -> A with several threads (the
    // arena grows by one block map, 0.3 MB at 224).
    auto next_block_slot = [threads](int slot) {
      if (slot == kSlotBlockA) return int(kSlotBlockB);
      return slot == kSlotBlockB && threads > 1 ? int(kSlotBlockC) : int(kSlotBlockA);
    };
    add_step(0, kSlotInput, kSlotBlockA);
    int current = kSlotBlockA;
    std::vector<FusedBlock> candidates;
    for (const BlockInfo& b : model.blocks()) {
      const int next = next_block_slot(current);
      int src = current;
      FusedBlock f;
      // A first block without expansion (MobileNetV2's block 0) takes the
      // stem as its expansion: the stem's 112x112x32 map (1.6 MB) then
      // exists only as the band's rows in L2. Not with a residual, which
      // would need that map.
      if (b.expand < 0 && !b.residual && plan.steps_.size() == 1) f.expand_step = 0;
      if (b.expand >= 0) {
        f.expand_step = int(plan.steps_.size());
        add_step(b.expand, src, kSlotExpanded);
        src = kSlotExpanded;
      }
      f.depthwise_step = int(plan.steps_.size());
      add_step(b.depthwise, src, kSlotDepthwise);
      f.project_step = int(plan.steps_.size());
      candidates.push_back(f);
      const bool stop_here_before_add = stop_step < 0 && layers[size_t(b.project)].name == stop_after;
      add_step(b.project, kSlotDepthwise, next);
      if (b.residual && !stop_here_before_add) plan.steps_.back().residual_slot = current;
      if (stop_step < 0 && b.name == stop_after) stop_step = int(plan.steps_.size()) - 1;
      current = next;
    }
    add_step(int(layers.size()) - 1, current, next_block_slot(current));

    if (stop_step >= 0) plan.steps_.resize(size_t(stop_step) + 1);

    // The grouped tail starts at the first block (or the final conv) whose
    // input map is small enough.
    plan.group_start_ = plan.steps_.size();
    if (group_images > 1) {
      auto small = [&](size_t i) {
        const ConvGeometry& g = plan.steps_[i].geometry;
        return int64_t(g.in_h) * g.in_w <= kGroupedMaxPixels;
      };
      // A block's first step or the final conv, never a step inside a
      // block: a block before the tail may run fused, and its inner
      // outputs never exist.
      size_t start = plan.steps_.size();
      for (const FusedBlock& f : candidates) {
        const size_t first = size_t(f.expand_step >= 0 ? f.expand_step : f.depthwise_step);
        if (first < plan.steps_.size() && small(first)) {
          start = first;
          break;
        }
      }
      const size_t last = plan.steps_.size() - 1;
      if (start == plan.steps_.size() && plan.steps_[last].layer == int(layers.size()) - 1) start = last;
      if (start < plan.steps_.size() && small(start) && plan.steps_[start].layer != 0) {
        plan.group_start_ = start;
        plan.group_images_ = group_images;
      }
    }

    // Every grouped block whose three steps survived and whose expansion
    // is a 1x1 conv runs in chunks.
    if (plan.group_images_ > 1 && chunk_channels > 0) {
      const int chunk = (chunk_channels + kChunkAlign - 1) / kChunkAlign * kChunkAlign;
      for (const FusedBlock& f : candidates) {
        if (f.expand_step < 0 || size_t(f.expand_step) < plan.group_start_ ||
            size_t(f.project_step) >= plan.steps_.size())
          continue;
        const ConvGeometry& ge = plan.steps_[size_t(f.expand_step)].geometry;
        if (ge.kernel_h != 1 || ge.kernel_w != 1 || ge.stride != 1) continue;
        plan.chunked_.push_back(ChunkedBlock{f.expand_step, f.depthwise_step, f.project_step, chunk});
      }
    }

    // Fuse every block whose project step survived and that is not in the
    // grouped tail; the full expanded and depthwise slots are then sized by
    // the unfused steps only.
    std::vector<bool> fused_step(plan.steps_.size(), false);
    detail::SizeCheck size;  // maps of 2^26 pixels x 65536 channels wrap a 32-bit size_t
    if (fuse_blocks) {
      for (FusedBlock f : candidates) {
        if (f.project_step >= int(plan.steps_.size())) continue;
        if (size_t(f.depthwise_step) >= plan.group_start_) continue;
        const ConvGeometry& d = plan.steps_[size_t(f.depthwise_step)].geometry;
        // With several threads a small map runs layer by layer: split by
        // channels, threads share no halo rows and read half the weights
        // each, where a 7-row map split by rows is 4 + 3 with each thread
        // expanding the rows around the boundary again and streaming all
        // of the block's weights (1.8 MB for the last block).
        if (threads > 1 && d.in_h < kMinFusedRowsPerThread * threads) continue;
        const size_t row_bytes = size.mul(size_t(d.in_w), size_t(d.in_c), sizeof(float));
        const int rows_fit = int(std::max<size_t>(size_t(d.kernel_h), tuning.fused_band_bytes / std::max<size_t>(1, row_bytes)));
        int band = std::max(1, (rows_fit - d.kernel_h) / d.stride + 1);
        // No band larger than one thread's share of the rows (threads split
        // the rows evenly, then band their share; a band re-reads the
        // project weights, so one thread prefers few bands).
        const int parallel = std::max(1, threads);
        band = std::min(band, std::max(1, (d.out_h + parallel - 1) / parallel));
        f.band_rows = band;
        const int in_rows = std::min(d.in_h, (band - 1) * d.stride + d.kernel_h);
        f.expanded_floats = f.expand_step >= 0 ? size.mul(size_t(in_rows), size_t(d.in_w), size_t(d.in_c)) : 0;
        f.depthwise_floats = size.mul(size_t(band), size_t(d.out_w), size_t(d.out_c));
        plan.scratch_floats_ = std::max(plan.scratch_floats_,
                                        size.add(size.round_up(f.expanded_floats, 16), size.round_up(f.depthwise_floats, 16)));
        for (int i : {f.expand_step, f.depthwise_step, f.project_step})
          if (i >= 0) fused_step[size_t(i)] = true;
        plan.fused_.push_back(f);
      }
    }

    // Slot sizes: per image for the steps before the tail; per image of a
    // group for the tail (its input slot holds the head's last output).
    // Outputs of fused steps other than the project never exist.
    auto is_project_step = [&](size_t i) {
      for (const FusedBlock& f : plan.fused_)
        if (size_t(f.project_step) == i) return true;
      return false;
    };
    size_t slot_size[kSlotCount] = {size_t(height) * size_t(width) * 3, 0, 0, 0, 0, 0};
    size_t group_size[kSlotCount] = {};
    for (size_t i = 0; i < plan.steps_.size(); ++i) {
      const PlanStep& st = plan.steps_[i];
      const ConvGeometry& g = st.geometry;
      const size_t n = size.mul(size_t(g.out_h), size_t(g.out_w), size_t(g.out_c));
      if (i >= plan.group_start_) {
        group_size[st.output_slot] = std::max(group_size[st.output_slot], n);
        if (i == plan.group_start_)
          group_size[st.input_slot] = std::max(group_size[st.input_slot],
                                               size.mul(size_t(g.in_h), size_t(g.in_w), size_t(g.in_c)));
      } else if (!fused_step[i] || is_project_step(i)) {
        slot_size[st.output_slot] = std::max(slot_size[st.output_slot], n);
      }
    }
    const PlanStep& last = plan.steps_.back();
    plan.output_shape_ = TensorShape{last.geometry.out_h, last.geometry.out_w, last.geometry.out_c};

    // Slots one after another, each 64-byte aligned; returns the total.
    auto lay_out = [&](const size_t (&sizes)[kSlotCount], size_t copies, size_t (&offsets)[kSlotCount]) {
      size_t offset = 0;
      for (int s = 0; s < kSlotCount; ++s) {
        offsets[s] = offset;
        offset = size.add(offset, size.round_up(size.mul(copies, sizes[s]), 16));
      }
      return offset;
    };
    plan.arena_floats_ = lay_out(slot_size, 1, plan.slot_offset_);
    const size_t group_floats = lay_out(group_size, size_t(plan.group_images_), plan.group_slot_offset_);
    plan.group_arena_floats_ = plan.group_images_ > 1 ? group_floats : 0;
    size.mul(size.add(plan.arena_floats_, size.add(plan.group_arena_floats_, plan.scratch_floats_)), sizeof(float));
    if (size.overflow)
      return invalid_argument("input size " + std::to_string(height) + "x" + std::to_string(width) + " on " +
                              model.name() + " needs more workspace than this target can address");
    *out = std::move(plan);
    return Status::Ok();
  }

  int height() const { return height_; }
  int width() const { return width_; }
  const std::vector<PlanStep>& steps() const { return steps_; }
  const TensorShape& output_shape() const { return output_shape_; }
  size_t arena_floats() const { return arena_floats_; }
  size_t arena_bytes() const { return arena_floats_ * sizeof(float); }
  size_t slot_offset(int slot) const { return slot_offset_[slot]; }
  const std::vector<FusedBlock>& fused_blocks() const { return fused_; }
  // Floats of scratch each thread needs for fused blocks.
  size_t scratch_floats() const { return scratch_floats_; }
  // The grouped tail: steps [group_start(), steps().size()) run over
  // group_images() images at once in a group arena of group_arena_floats()
  // (steps().size() and 0 when there is none). Image g of a tensor of E
  // floats per image in slot s starts at group_slot_offset(s) + g * E.
  size_t group_start() const { return group_start_; }
  int group_images() const { return group_images_; }
  size_t group_arena_floats() const { return group_arena_floats_; }
  size_t group_slot_offset(int slot) const { return group_slot_offset_[slot]; }
  // Blocks of the grouped tail that run in chunks, in step order.
  const std::vector<ChunkedBlock>& chunked_blocks() const { return chunked_; }
  // Input bytes of the pixel block one thread runs a 1x1 conv over (tuning.hpp).
  size_t pointwise_block_bytes() const { return pointwise_block_bytes_; }

 private:
  int height_ = 0, width_ = 0;
  size_t pointwise_block_bytes_ = kDefaultL2Bytes / 2;
  std::vector<PlanStep> steps_;
  TensorShape output_shape_;
  size_t slot_offset_[kSlotCount] = {};
  size_t arena_floats_ = 0;
  std::vector<FusedBlock> fused_;
  size_t scratch_floats_ = 0;
  size_t group_start_ = 0;
  int group_images_ = 1;
  size_t group_slot_offset_[kSlotCount] = {};
  size_t group_arena_floats_ = 0;
  std::vector<ChunkedBlock> chunked_;
};

}  // namespace featx
