// featx/extractor.hpp: runs a Model on images.
//
// An Extractor holds the per-run state (plan and arena) for one thread; many
// Extractors may share one immutable Model. Input is float RGB in [0, 1],
// NHWC; the model's input normalisation maps it to the network's range.
//
// Threads: each layer's output rows (or pixels) are split across OpenMP
// threads. No reduction is ever split, so every output value is computed by
// the same operations in the same order whatever the thread count: results
// are bit-identical for 1, 2 or N threads, and run to run.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "featx/kernels/conv_ref.hpp"
#include "featx/kernels/dense_ref.hpp"
#include "featx/kernels/depthwise_ref.hpp"
#include "featx/kernels/pointwise_ref.hpp"
#include "featx/kernels/pool_ref.hpp"
#include "featx/model.hpp"
#include "featx/plan.hpp"
#include "featx/status.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace featx {

enum class Pool { avg, max, none };

inline const char* pool_name(Pool p) {
  return p == Pool::avg ? "avg" : p == Pool::max ? "max" : "none";
}

inline Status parse_pool(const std::string& s, Pool* out) {
  if (s == "avg") *out = Pool::avg;
  else if (s == "max") *out = Pool::max;
  else if (s == "none") *out = Pool::none;
  else return invalid_argument("unknown pooling '" + s + "' (expected avg, max or none)");
  return Status::Ok();
}

struct ExtractorOptions {
  Pool pool = Pool::avg;  // avg over H and W = the Hub feature vector
  std::string layer;      // empty: the feature layer; else a conv layer or block name
  int threads = 0;        // 0: OpenMP's default (OMP_NUM_THREADS or all cores)
};

// A dense float tensor with its shape, row-major.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

class Extractor {
 public:
  explicit Extractor(std::shared_ptr<const Model> model, ExtractorOptions options = {})
      : model_(std::move(model)), options_(std::move(options)) {}

  const Model& model() const { return *model_; }
  const ExtractorOptions& options() const { return options_; }

  // images: n x height x width x 3 floats in [0, 1]. out: (n, C) when pooled,
  // (n, H', W', C) with Pool::none.
  Status extract(const float* images, int n, int height, int width, Tensor* out) {
    if (!images || n < 1) return invalid_argument("no input images");
    FEATX_RETURN_IF_ERROR(prepare(height, width, options_.layer));
    const TensorShape s = plan_.output_shape();
    const size_t per_image = options_.pool == Pool::none ? s.elements() : size_t(s.channels);
    out->shape = options_.pool == Pool::none
                     ? std::vector<int64_t>{n, s.height, s.width, s.channels}
                     : std::vector<int64_t>{n, s.channels};
    out->data.resize(size_t(n) * per_image);
    const size_t image_floats = size_t(height) * size_t(width) * 3;
    for (int i = 0; i < n; ++i) {
      const float* result = forward(images + size_t(i) * image_floats);
      float* dst = out->data.data() + size_t(i) * per_image;
      pool(result, s, options_.pool, dst);
    }
    return Status::Ok();
  }

  // Classifier logits (n, classes) from the average-pooled feature vector.
  Status logits(const float* images, int n, int height, int width, Tensor* out) {
    if (!model_->has_classifier())
      return invalid_argument(model_->name() + ": model has no classifier head");
    if (!images || n < 1) return invalid_argument("no input images");
    FEATX_RETURN_IF_ERROR(prepare(height, width, std::string()));
    const ClassifierInfo& c = model_->classifier();
    const TensorShape s = plan_.output_shape();
    std::vector<float> features(size_t(s.channels));
    out->shape = {n, c.num_classes};
    out->data.resize(size_t(n) * size_t(c.num_classes));
    const size_t image_floats = size_t(height) * size_t(width) * 3;
    for (int i = 0; i < n; ++i) {
      const float* result = forward(images + size_t(i) * image_floats);
      pool(result, s, Pool::avg, features.data());
      dense_ref(features.data(), s.channels, c.weights.data(), c.bias.data(), c.num_classes,
                out->data.data() + size_t(i) * size_t(c.num_classes));
    }
    return Status::Ok();
  }

  // Bytes of the arena of the current plan (0 before the first run).
  size_t arena_bytes() const { return arena_.size() * sizeof(float); }

 private:
  Status prepare(int height, int width, const std::string& layer) {
    if (planned_ && plan_.height() == height && plan_.width() == width && planned_layer_ == layer)
      return Status::Ok();
    Plan plan;
    FEATX_RETURN_IF_ERROR(Plan::make(*model_, height, width, layer, &plan));
    plan_ = std::move(plan);
    planned_layer_ = layer;
    planned_ = true;
    if (arena_.size() < plan_.arena_floats()) arena_.assign(plan_.arena_floats(), 0.0f);
    return Status::Ok();
  }

  int thread_count() const {
#ifdef _OPENMP
    return options_.threads > 0 ? options_.threads : omp_get_max_threads();
#else
    return 1;
#endif
  }

  float* slot(int s) { return arena_.data() + plan_.slot_offset(s); }

  // Runs the plan on one image and returns the last step's output (in the arena).
  const float* forward(const float* image) {
    const size_t pixels = size_t(plan_.height()) * size_t(plan_.width());
    float* input = slot(kSlotInput);
    const float scale = model_->input_scale(), offset = model_->input_offset();
    for (size_t i = 0; i < pixels * 3; ++i) input[i] = scale * image[i] + offset;

    const int threads = thread_count();
    const float* out = input;
    for (const PlanStep& step : plan_.steps()) {
      const ConvLayer& layer = model_->layers()[size_t(step.layer)];
      const ConvGeometry& g = step.geometry;
      const float* src = slot(step.input_slot);
      float* dst = slot(step.output_slot);
      const float* residual = step.residual_slot >= 0 ? slot(step.residual_slot) : nullptr;
      if (layer.depthwise) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int row = 0; row < g.out_h; ++row)
          depthwise_ref(g, src, layer.weights.data(), layer.bias.data(), layer.activation, dst,
                        row, row + 1);
      } else if (g.kernel_h == 1 && g.kernel_w == 1 && g.stride == 1) {
        const int64_t out_pixels = int64_t(g.out_h) * g.out_w;
        const int64_t chunk = 16;
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t p0 = 0; p0 < out_pixels; p0 += chunk)
          pointwise_ref(src, size_t(p0), size_t(std::min(p0 + chunk, out_pixels)), g.in_c,
                        layer.weights.data(), layer.bias.data(), g.out_c, layer.activation,
                        residual, dst);
      } else {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int row = 0; row < g.out_h; ++row)
          conv2d_ref(g, src, layer.weights.data(), layer.bias.data(), layer.activation, dst, row,
                     row + 1);
      }
      out = dst;
    }
    return out;
  }

  static void pool(const float* map, const TensorShape& s, Pool p, float* dst) {
    const size_t pixels = size_t(s.height) * size_t(s.width);
    if (p == Pool::avg) global_avg_pool_ref(map, pixels, s.channels, dst);
    else if (p == Pool::max) global_max_pool_ref(map, pixels, s.channels, dst);
    else std::copy(map, map + s.elements(), dst);
  }

  std::shared_ptr<const Model> model_;
  ExtractorOptions options_;
  Plan plan_;
  std::string planned_layer_;
  bool planned_ = false;
  std::vector<float> arena_;
};

}  // namespace featx
