// featx/extractor.hpp: the convenience API over Plan and run.
//
// An Extractor plans for the input it is given and owns the workspace, so
// callers write ex.extract(images, n, h, w, &tensor). It keeps one plan per
// input size, layer and output, made for the largest batch seen: after the
// first call of a kind, calls of that kind (any batch up to it) allocate
// only the output tensor. Results are run()'s bits (plan.hpp, run.hpp): the
// same for every thread count and batch. Many Extractors may share one
// immutable Model; one Extractor is used by one thread at a time.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "featx/model.hpp"
#include "featx/plan.hpp"
#include "featx/run.hpp"
#include "featx/status.hpp"

namespace featx {

struct ExtractorOptions {
  Pool pool = Pool::avg;  // avg over H and W = the Hub feature vector
  std::string layer;      // as PlanOptions::layer
  int threads = 0;        // 0: OpenMP's default (OMP_NUM_THREADS or all cores)
  std::string isa;        // "": FEATX_ISA or the best available; else scalar|avx2|avx512|neon
  bool profile = false;   // time every step (see Extractor::profile)
  bool fuse_blocks = true;
  int group_chunk_channels = 192;  // as PlanOptions
  size_t l2_bytes = 0;             // as PlanOptions
};

// Milliseconds spent per plan step over all runs since the last reset
// (steps inside a fused block have an empty name; the block is one entry).
struct LayerTime {
  std::string name;
  double ms = 0.0;
};

// A dense float tensor with its shape, row-major.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

class Extractor {
 public:
  explicit Extractor(std::shared_ptr<const Model> model, ExtractorOptions options = {})
      : model_(std::move(model)), options_(std::move(options)) {
    isa_ = selected_isa();
    Isa wanted;
    if (!options_.isa.empty() && parse_isa(options_.isa, &wanted) && isa_supported(wanted)) isa_ = wanted;
  }

  const Model& model() const { return *model_; }
  const ExtractorOptions& options() const { return options_; }
  // The instruction set the kernels use.
  Isa isa() const { return isa_; }
  // Per-step times of the plan the last run used (empty before the first).
  const std::vector<LayerTime>& profile() const { return profile_; }
  void reset_profile() {
    std::fill(step_ms_.begin(), step_ms_.end(), 0.0);
    for (auto& t : profile_) t.ms = 0.0;
  }

  // images: n x height x width x 3 floats in [0, 1]. out: (n, C) when pooled,
  // (n, H', W', C) with Pool::none, (n, units) for a Dense layer.
  Status extract(const float* images, int n, int height, int width, Tensor* out) {
    return run_kind(Output::features, images, n, height, width, out);
  }
  // The last Dense layer's output before its activation (n, classes).
  Status logits(const float* images, int n, int height, int width, Tensor* out) {
    return run_kind(Output::logits, images, n, height, width, out);
  }
  // The model's class probabilities (n, classes): its last layer's softmax,
  // or the softmax of the logits when the last layer is linear.
  Status probabilities(const float* images, int n, int height, int width, Tensor* out) {
    return run_kind(Output::probabilities, images, n, height, width, out);
  }

  // Bytes of the workspace the Extractor holds (0 before the first run).
  size_t arena_bytes() const { return workspace_.size(); }
  // The plan of the last run (invalid before the first).
  const Plan& plan() const { return plan_; }

 private:
  Status run_kind(Output output, const float* images, int n, int height, int width, Tensor* out) {
    if (!images || n < 1) return invalid_argument("no input images");
    if (!out) return invalid_argument("no output tensor");
    FEATX_RETURN_IF_ERROR(prepare(output, height, width, n));
    out->shape = plan_.output_shape(n);
    out->data.resize(size_t(n) * plan_.output_elements_per_image());
    Status st = run(plan_, images, n, workspace_.data(), workspace_.size(), out->data.data(), out->data.size(),
                    options_.profile ? step_ms_.data() : nullptr);
    if (st && options_.profile)
      for (size_t i = 0; i < profile_.size(); ++i) profile_[i].ms = step_ms_[i];
    return st;
  }

  // Re-plans for a new input size or output, or a batch larger than the
  // plan's; the workspace only grows.
  Status prepare(Output output, int height, int width, int n) {
    if (height < 1 || width < 1)
      return invalid_argument("input size " + std::to_string(height) + "x" + std::to_string(width) + " is empty");
    if (plan_.valid() && plan_.height() == height && plan_.width() == width && output_ == output &&
        n <= plan_.batch())
      return Status::Ok();
    PlanOptions o;
    o.height = height;
    o.width = width;
    o.batch = n;
    if (plan_.valid() && plan_.height() == height && plan_.width() == width && output_ == output)
      o.batch = std::max(n, plan_.batch());
    o.layer = output == Output::features ? options_.layer : std::string();
    o.pool = output == Output::features ? options_.pool : Pool::avg;  // a head pools by average
    o.output = output;
    o.threads = options_.threads;
    o.isa = isa_name(isa_);
    o.fuse_blocks = options_.fuse_blocks;
    o.group_chunk_channels = options_.group_chunk_channels;
    o.l2_bytes = options_.l2_bytes;
    o.profile = options_.profile;
    Plan plan;
    FEATX_RETURN_IF_ERROR(Plan::make(model_, o, &plan));
    plan_ = std::move(plan);
    output_ = output;
    if (workspace_.size() < plan_.workspace_bytes()) workspace_.resize(plan_.workspace_bytes());
    if (options_.profile) {
      step_ms_.assign(plan_.step_count(), 0.0);
      profile_.clear();
      for (std::string& name : plan_.step_names()) profile_.push_back(LayerTime{std::move(name), 0.0});
    }
    return Status::Ok();
  }

  std::shared_ptr<const Model> model_;
  ExtractorOptions options_;
  Isa isa_ = Isa::scalar;
  Plan plan_;
  Output output_ = Output::features;
  std::vector<unsigned char> workspace_;
  std::vector<double> step_ms_;
  std::vector<LayerTime> profile_;
};

}  // namespace featx
