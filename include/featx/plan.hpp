// featx/plan.hpp: everything a run needs, sized before anything runs.
//
// The three steps an embedded caller sizes memory with (as TFLite Micro's
// arena or ggml's plan/compute):
//
//   featx::PlanOptions o;  o.height = o.width = 224;  o.batch = 1;  o.threads = 1;
//   featx::Plan plan;
//   featx::Status st = featx::Plan::make(model, o, &plan);   // allocates: tables, chunk weights
//   std::vector<unsigned char> workspace(plan.workspace_bytes());  // or a static buffer
//   std::vector<float> out(plan.output_elements());
//   st = featx::run(plan, images, 1, workspace.data(), workspace.size(),
//                   out.data(), out.size());                  // run.hpp: no allocation
//
// workspace_bytes() is exact for a buffer of any alignment, and the same for
// every run of the plan; output_elements() is batch() images' worth. A plan
// made for a batch of B runs any 1..B images with the same bits per image.
// A Plan is immutable and may be shared by threads, each with its own
// workspace.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "featx/chunked_block.hpp"
#include "featx/detail/checked_size.hpp"
#include "featx/head.hpp"
#include "featx/kernels/kernel_set.hpp"
#include "featx/layer_names.hpp"
#include "featx/model.hpp"
#include "featx/scheduler.hpp"
#include "featx/status.hpp"
#include "featx/step_plan.hpp"
#include "featx/tuning.hpp"

namespace featx {

enum class Pool { avg, max, none };

inline const char* pool_name(Pool p) {
  return p == Pool::avg ? "avg" : p == Pool::max ? "max" : "none";
}

inline Status parse_pool(const std::string& s, Pool* out) {
  if (s == "avg") *out = Pool::avg;
  else if (s == "max") *out = Pool::max;
  else if (s == "none") *out = Pool::none;
  else return invalid_argument("unknown pooling '" + printable(s) + "' (expected avg, max or none)");
  return Status::Ok();
}

// What a run writes per image.
enum class Output {
  features,       // `layer` (pooled by `pool`): the feature vector by default
  logits,         // the last Dense layer before its activation
  probabilities,  // its softmax (the softmax of the logits when it is linear)
};

struct PlanOptions {
  int height = 0, width = 0;  // input size; 0: the model's resolution
  int batch = 1;              // most images one run takes
  // "": the feature layer; else a conv layer or block (slim or Keras name,
  // layer_names.hpp), the pooled vector ("global_average_pooling2d") or one
  // of the model's Dense layers (after its activation; needs Pool::avg).
  std::string layer;
  Pool pool = Pool::avg;      // avg over H and W = the Hub feature vector
  Output output = Output::features;
  int threads = 0;            // 0: OpenMP's default (OMP_NUM_THREADS or all cores); 1 without OpenMP
  std::string isa;            // "": FEATX_ISA or the best available; else scalar|avx2|avx512|neon
  bool fuse_blocks = true;    // run inverted-residual blocks in L2-sized row bands
  // L2 bytes per core the bands and blocks are sized for (tuning.hpp); 0:
  // FEATX_L2_BYTES or this CPU's. Changes speed, never a value.
  size_t l2_bytes = 0;
  // Expanded channels per chunk in the blocks of a batch's grouped tail
  // (step_plan.hpp); 0: layer by layer. Not on the scalar ISA, whose
  // double accumulation would round the partial sums between chunks.
  int group_chunk_channels = 192;
  bool profile = false;       // run() may time each step (threads stay inside each image)
};

class Plan {
 public:
  static Status make(std::shared_ptr<const Model> model, const PlanOptions& options, Plan* out) {
    if (!model) return invalid_argument("no model");
    if (!out) return invalid_argument("no plan to fill");
    Plan p;
    p.model_ = std::move(model);
    const Model& m = *p.model_;
    p.options_ = options;
    PlanOptions& o = p.options_;
    if (o.height == 0 && o.width == 0) o.height = o.width = m.resolution();
    if (o.batch < 1 || o.batch > (1 << 20))
      return invalid_argument(m.name() + ": batch " + std::to_string(o.batch) + " out of range (1 to 1048576)");
    Isa isa = selected_isa();
    Isa wanted;
    if (!o.isa.empty()) {
      if (!parse_isa(o.isa, &wanted))
        return invalid_argument("unknown ISA '" + printable(o.isa) + "' (expected scalar, avx2, avx512 or neon)");
      if (isa_supported(wanted)) isa = wanted;  // else the best available, as FEATX_ISA
    }
    p.kernels_ = kernel_set(isa);
    p.threads_ = detail::resolve_threads(o.threads);
    p.tuning_ = cache_tuning(o.l2_bytes);
    FEATX_RETURN_IF_ERROR(p.resolve_output());

    // The kinds of schedule runs of 1..batch images need: the batch's own,
    // and with images in parallel also the one for fewer images than threads.
    const Schedule full = schedule_for(p.threads_, o.batch, o.profile);
    p.kinds_.emplace_back();
    p.kinds_.back().schedule = full;
    if (full.images_in_parallel) {
      p.kinds_.emplace_back();
      p.kinds_.back().schedule = schedule_for(p.threads_, 1, o.profile);
    }
    const int chunk = isa == Isa::scalar ? 0 : o.group_chunk_channels;
    const std::string network_layer = p.network_layer_;
    for (Kind& k : p.kinds_) {
      FEATX_RETURN_IF_ERROR(StepPlan::make(m, o.height, o.width, network_layer, &k.steps, o.fuse_blocks,
                                           k.schedule.threads_per_image, k.schedule.group_images, chunk, p.tuning_));
      for (const ChunkedBlock& c : k.steps.chunked_blocks())
        k.chunk_weights.push_back(cut_chunk_weights(m, k.steps, c));
      k.layout = workspace_layout(k.steps, k.schedule, p.threads_, p.head_floats());
      if (!k.layout.addressable())
        return invalid_argument(m.name() + ": batch " + std::to_string(o.batch) + " of " + std::to_string(o.height) +
                                "x" + std::to_string(o.width) + " needs more workspace than this target can address");
      p.workspace_bytes_ = std::max(p.workspace_bytes_, k.layout.bytes());
    }
    const TensorShape s = p.kinds_[0].steps.output_shape();
    detail::SizeCheck size;
    if (p.dense_last_ >= 0) p.per_image_ = size_t(m.head()[size_t(p.dense_last_)].out_features);
    else p.per_image_ = o.pool == Pool::none ? size.mul(size_t(s.height), size_t(s.width), size_t(s.channels))
                                             : size_t(s.channels);
    size.mul(size_t(o.batch), p.per_image_, sizeof(float));
    if (size.overflow)
      return invalid_argument(m.name() + ": the output of batch " + std::to_string(o.batch) +
                              " needs more memory than this target can address");
    *out = std::move(p);
    return Status::Ok();
  }

  // Bytes of the caller's workspace a run needs (any alignment).
  size_t workspace_bytes() const { return workspace_bytes_; }
  // Floats run() writes for batch() images, and per image.
  size_t output_elements() const { return size_t(options_.batch) * per_image_; }
  size_t output_elements_per_image() const { return per_image_; }
  // (n, C) pooled or from a head; (n, H', W', C) with Pool::none.
  std::vector<int64_t> output_shape(int n) const {
    if (dense_last_ >= 0 || options_.pool != Pool::none) return {n, int64_t(per_image_)};
    const TensorShape s = kinds_[0].steps.output_shape();
    return {n, s.height, s.width, s.channels};
  }
  // Heap bytes the plan holds (steps, tables and the weights it cut for
  // chunked blocks): memory beside the model and the workspace.
  size_t plan_bytes() const {
    size_t bytes = sizeof(Plan);
    for (const Kind& k : kinds_) {
      bytes += k.steps.steps().size() * sizeof(PlanStep) + k.steps.fused_blocks().size() * sizeof(FusedBlock) +
               k.steps.chunked_blocks().size() * sizeof(ChunkedBlock);
      for (const ChunkWeights& w : k.chunk_weights) bytes += chunk_weight_bytes(w);
    }
    return bytes;
  }

  const Model& model() const { return *model_; }
  const std::shared_ptr<const Model>& shared_model() const { return model_; }
  const PlanOptions& options() const { return options_; }
  int batch() const { return options_.batch; }
  int height() const { return options_.height; }
  int width() const { return options_.width; }
  int threads() const { return threads_; }
  Isa isa() const { return kernels_.isa; }
  // The cache sizes the plan was made for and the block sizes taken from them.
  const CacheTuning& tuning() const { return tuning_; }
  bool valid() const { return model_ != nullptr; }

  // The conv steps a run goes through, named for a profile: a fused or
  // chunked block is timed as a whole under its project step
  // ("expanded_conv_3 (fused)"), the steps inside it have empty names.
  size_t step_count() const { return kinds_.empty() ? 0 : kinds_[0].steps.steps().size(); }
  std::vector<std::string> step_names() const {
    std::vector<std::string> names;
    if (kinds_.empty()) return names;
    const StepPlan& plan = kinds_[0].steps;
    for (const PlanStep& step : plan.steps()) names.push_back(model_->layers()[size_t(step.layer)].name);
    auto as_block = [&](int expand_step, int depthwise_step, int project_step) {
      for (int i : {expand_step, depthwise_step})
        if (i >= 0) names[size_t(i)].clear();
      names[size_t(project_step)] = block_name(plan, expand_step, project_step);
    };
    for (const FusedBlock& f : plan.fused_blocks()) as_block(f.expand_step, f.depthwise_step, f.project_step);
    for (const ChunkedBlock& c : plan.chunked_blocks()) as_block(c.expand_step, c.depthwise_step, c.project_step);
    return names;
  }
  // The blocks a one-image run fuses and the output rows of each band: what
  // the tuning chose ("expanded_conv_3 (fused)", 14).
  std::vector<std::pair<std::string, int>> fused_band_rows() const {
    std::vector<std::pair<std::string, int>> bands;
    if (kinds_.empty()) return bands;
    const StepPlan& plan = kinds_.back().steps;  // the one-image kind when there are two
    for (const FusedBlock& f : plan.fused_blocks())
      bands.emplace_back(block_name(plan, f.expand_step, f.project_step), f.band_rows);
    return bands;
  }

 private:
  friend struct PlanAccess;

  struct Kind {
    Schedule schedule;
    StepPlan steps;
    std::vector<ChunkWeights> chunk_weights;  // per chunked block of `steps`
    WorkspaceLayout layout;
  };

  // What options_.layer and options_.output name: a network layer (pooled
  // or not) or a Dense layer of the head.
  Status resolve_output() {
    const Model& m = *model_;
    if (options_.output != Output::features) {
      if (!m.has_classifier()) return invalid_argument(m.name() + ": model has no classifier head");
      if (options_.pool != Pool::avg)
        return invalid_argument(m.name() + ": the classifier's outputs follow global average pooling; they need --pool avg");
      dense_last_ = int(m.head().size()) - 1;
      const DenseLayer& last = m.head().back();
      activate_last_ = false;
      if (options_.output == Output::probabilities) {
        if (last.activation == DenseActivation::softmax) activate_last_ = true;
        else if (last.activation == DenseActivation::linear) softmax_after_ = true;
        else
          return invalid_argument(m.name() + ": the last Dense layer '" + printable(last.name) + "' has " +
                                  dense_activation_name(last.activation) +
                                  ", not softmax or linear: not a classifier (extract --layer " +
                                  printable(last.name) + " gives its output)");
      }
      return Status::Ok();
    }
    ResolvedLayer target;
    FEATX_RETURN_IF_ERROR(resolve_layer(m, options_.layer, &target));
    if (target.kind != ResolvedLayer::Kind::network && options_.pool != Pool::avg)
      return invalid_argument(m.name() + ": layer '" + printable(options_.layer) +
                              "' follows global average pooling; it needs --pool avg");
    if (target.kind == ResolvedLayer::Kind::dense) {
      dense_last_ = target.dense;
      activate_last_ = true;
    } else {
      network_layer_ = target.network_layer;  // "" (the feature layer) for the pooled vector
    }
    return Status::Ok();
  }

  std::string block_name(const StepPlan& plan, int expand_step, int project_step) const {
    const int project_layer = plan.steps()[size_t(project_step)].layer;
    std::string stem;
    if (expand_step >= 0 && plan.steps()[size_t(expand_step)].layer == 0) stem = model_->layers()[0].name + "+";
    for (const BlockInfo& b : model_->blocks())
      if (b.project == project_layer) return stem + b.name + " (fused)";
    return "block";
  }

  // Floats of a worker's head buffer: the pooled features and the dense
  // layers' scratch.
  size_t head_floats() const {
    if (dense_last_ < 0) return 0;
    return size_t(model_->feature_dim()) + dense_head_scratch_floats(model_->head());
  }

  std::shared_ptr<const Model> model_;
  PlanOptions options_;
  KernelSet kernels_;
  CacheTuning tuning_;
  int threads_ = 1;
  std::string network_layer_;
  int dense_last_ = -1;  // index into Model::head() of the last Dense layer run, or -1
  bool activate_last_ = true, softmax_after_ = false;
  std::vector<Kind> kinds_;
  size_t workspace_bytes_ = 0, per_image_ = 0;
};

}  // namespace featx
