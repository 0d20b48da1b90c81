// featx/extractor.hpp: runs a Model on images.
//
// An Extractor holds the per-run state (plan and arena) for one thread; many
// Extractors may share one immutable Model. Input is float RGB in [0, 1],
// NHWC; the model's input normalisation maps it to the network's range.
//
// Threads: with a batch of at least as many images as threads, images are
// spread over OpenMP threads (one arena each); otherwise each layer's output
// rows (or pixel tiles) are split across threads. A thread that runs several
// images runs the last, small-map blocks over up to 4 of them at once (see
// plan.hpp, image groups). No reduction is ever
// split between threads or reordered (a chunked block stores a partial sum
// and continues it in order), so every output value is computed by the
// same operations in the same order whatever the thread count or batch:
// results are bit-identical for 1, 2 or N threads, and run to run.
//
// Kernels: the ISA is chosen at construction (FEATX_ISA or the best the CPU
// has, see kernels/isa.hpp). SIMD kernels accumulate in float with FMA; the
// scalar references accumulate in double. Both are tested against ONNX
// Runtime goldens with the same bounds.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "featx/fused_block.hpp"
#include "featx/kernels/conv_ref.hpp"
#include "featx/head.hpp"
#include "featx/kernels/kernel_set.hpp"
#include "featx/kernels/pool_ref.hpp"
#include "featx/layer_names.hpp"
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
  std::string isa;        // "": FEATX_ISA or the best available; else scalar|avx2|avx512|neon
  bool profile = false;   // time every layer (see Extractor::profile)
  bool fuse_blocks = true;  // run inverted-residual blocks in L2-sized row bands
  // Expanded channels per chunk in the blocks of a batch's grouped tail
  // (plan.hpp); 0: layer by layer. Not on the scalar ISA, whose double
  // accumulation would round the partial sums between chunks.
  int group_chunk_channels = 192;
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

// Input bytes of the pixel block one thread runs a 1x1 conv over (see
// run_steps): half of a 1 MiB L2, the rest for the weight panels streaming
// past.
constexpr size_t kPointwiseBlockBytes = 512 * 1024;

class Extractor {
 public:
  explicit Extractor(std::shared_ptr<const Model> model, ExtractorOptions options = {})
      : model_(std::move(model)), options_(std::move(options)) {
    Isa isa = selected_isa();
    Isa wanted;
    if (!options_.isa.empty() && parse_isa(options_.isa, &wanted) && isa_supported(wanted)) isa = wanted;
    kernels_ = kernel_set(isa);
  }

  const Model& model() const { return *model_; }
  const ExtractorOptions& options() const { return options_; }
  // The instruction set the kernels use.
  Isa isa() const { return kernels_.isa; }
  // Per-step times of the plan the last run used (empty before the first;
  // a run that plans anew may move it). Runs of other thread splits of the
  // same input add to their own plan's times.
  const std::vector<LayerTime>& profile() const {
    static const std::vector<LayerTime> none;
    return runs_.empty() ? none : runs_[current_].profile;
  }
  void reset_profile() {
    for (auto& run : runs_)
      for (auto& t : run.profile) t.ms = 0.0;
  }

  // images: n x height x width x 3 floats in [0, 1]. out: (n, C) when pooled,
  // (n, H', W', C) with Pool::none. options().layer names a conv layer or
  // block (slim or Keras name, see layer_names.hpp), the pooled feature
  // vector ("global_average_pooling2d") or one of the model's Dense layers:
  // (n, units), after its activation.
  Status extract(const float* images, int n, int height, int width, Tensor* out) {
    if (!images || n < 1) return invalid_argument("no input images");
    ResolvedLayer target;
    FEATX_RETURN_IF_ERROR(resolve_layer(*model_, options_.layer, &target));
    if (target.kind != ResolvedLayer::Kind::network) {
      if (options_.pool != Pool::avg)
        return invalid_argument(model_->name() + ": layer '" + options_.layer +
                                "' follows global average pooling; it needs --pool avg");
      if (target.kind == ResolvedLayer::Kind::dense)
        return run_head(images, n, height, width, size_t(target.dense), true, out);
    }  // the pooled features: network_layer "" is the feature layer
    FEATX_RETURN_IF_ERROR(prepare(height, width, target.network_layer, n));
    const TensorShape s = plan().output_shape();
    const size_t per_image = options_.pool == Pool::none ? s.elements() : size_t(s.channels);
    out->shape = options_.pool == Pool::none
                     ? std::vector<int64_t>{n, s.height, s.width, s.channels}
                     : std::vector<int64_t>{n, s.channels};
    out->data.resize(size_t(n) * per_image);
    run_batch(images, n, [&](int i, const float* result, int) {
      pool(kernels_, result, s, options_.pool, out->data.data() + size_t(i) * per_image);
    });
    return Status::Ok();
  }

  // The last Dense layer's output before its activation (n, classes): the
  // classifier's logits.
  Status logits(const float* images, int n, int height, int width, Tensor* out) {
    if (!model_->has_classifier())
      return invalid_argument(model_->name() + ": model has no classifier head");
    return run_head(images, n, height, width, model_->head().size() - 1, false, out);
  }

  // The model's class probabilities (n, classes): its last layer's softmax,
  // or the softmax of the logits when the last layer is linear (a
  // classification .tflite stores logits).
  Status probabilities(const float* images, int n, int height, int width, Tensor* out) {
    if (!model_->has_classifier())
      return invalid_argument(model_->name() + ": model has no classifier head");
    const DenseLayer& last = model_->head().back();
    if (last.activation == DenseActivation::softmax)
      return run_head(images, n, height, width, model_->head().size() - 1, true, out);
    if (last.activation != DenseActivation::linear)
      return invalid_argument(model_->name() + ": the last Dense layer '" + last.name + "' has " +
                              dense_activation_name(last.activation) +
                              ", not softmax or linear: not a classifier (extract --layer " +
                              last.name + " gives its output)");
    FEATX_RETURN_IF_ERROR(logits(images, n, height, width, out));
    for (int i = 0; i < n; ++i)
      head_detail::softmax(out->data.data() + size_t(i) * size_t(last.out_features), last.out_features);
    return Status::Ok();
  }

  // Bytes of all activation arenas (0 before the first run).
  size_t arena_bytes() const {
    size_t total = 0;
    for (const auto& a : arenas_) total += a.size() * sizeof(float);
    for (const auto& a : group_arenas_) total += a.size() * sizeof(float);
    return total;
  }

 private:
  // Dense layers head[0..last] on each image's average-pooled features.
  Status run_head(const float* images, int n, int height, int width, size_t last,
                  bool activate_last, Tensor* out) {
    if (!images || n < 1) return invalid_argument("no input images");
    FEATX_RETURN_IF_ERROR(prepare(height, width, std::string(), n));
    const std::vector<DenseLayer>& head = model_->head();
    const TensorShape s = plan().output_shape();
    const size_t per_worker = size_t(s.channels) + dense_head_scratch_floats(head);
    features_.resize(per_worker * size_t(thread_count()));
    const int units = head[last].out_features;
    out->shape = {n, units};
    out->data.resize(size_t(n) * size_t(units));
    run_batch(images, n, [&](int i, const float* result, int worker) {
      float* features = features_.data() + size_t(worker) * per_worker;
      pool(kernels_, result, s, Pool::avg, features);
      run_dense_head(head, last, activate_last, features, features + s.channels,
                     out->data.data() + size_t(i) * size_t(units));
    });
    return Status::Ok();
  }

  // The plan depends on the threads that share one image (band sizes, which
  // blocks fuse) and on whether one thread runs several images (the grouped
  // tail). The plans made for one input size and layer are kept, with the
  // buffers sized for the largest, so a caller alternating single images
  // (threads inside each) and batches (images in parallel) plans and
  // allocates once per kind, not at every switch. A grouped plan also runs
  // single images (a group of one, same values). A new input size or layer
  // drops the plans and releases the buffers.
  Status prepare(int height, int width, const std::string& layer, int n) {
    const int threads_per_image = threads_inside_image(n);
    const int group = group_images(n);
    const bool same_input = !runs_.empty() && runs_[0].plan.height() == height &&
                            runs_[0].plan.width() == width && runs_[0].layer == layer;
    if (same_input) {
      for (size_t i = 0; i < runs_.size(); ++i) {
        const PlannedRun& r = runs_[i];
        if (r.threads_per_image == threads_per_image &&
            (r.group == group || (group == 1 && r.group > 1))) {
          select(i);
          return Status::Ok();
        }
      }
    }
    PlannedRun run;
    const int chunk = kernels_.isa == Isa::scalar ? 0 : options_.group_chunk_channels;
    FEATX_RETURN_IF_ERROR(Plan::make(*model_, height, width, layer, &run.plan,
                                     options_.fuse_blocks, threads_per_image, group, chunk));
    run.layer = layer;
    run.threads_per_image = threads_per_image;
    run.group = group;
    for (const PlanStep& step : run.plan.steps())
      run.profile.push_back(LayerTime{model_->layers()[size_t(step.layer)].name, 0.0});
    // A fused or chunked block is timed as a whole, under its project step.
    auto time_as_block = [&](int expand_step, int depthwise_step, int project_step) {
      for (int i : {expand_step, depthwise_step})
        if (i >= 0) run.profile[size_t(i)].name.clear();
      run.profile[size_t(project_step)].name = block_name_of(run.plan, expand_step, project_step);
    };
    for (const FusedBlock& f : run.plan.fused_blocks())
      time_as_block(f.expand_step, f.depthwise_step, f.project_step);
    for (const ChunkedBlock& c : run.plan.chunked_blocks()) {
      time_as_block(c.expand_step, c.depthwise_step, c.project_step);
      run.chunk_weights.push_back(cut_chunk_weights(run.plan, c));
    }
    if (!same_input) {
      runs_.clear();
      arenas_.clear();
      group_arenas_.clear();
      scratch_.clear();
    }
    runs_.push_back(std::move(run));
    select(runs_.size() - 1);
    return Status::Ok();
  }

  void select(size_t i) { current_ = i; }
  const Plan& plan() const { return runs_[current_].plan; }

  // "expanded_conv_3 (fused)"; "Conv+expanded_conv (fused)" when the block
  // runs the stem as its expansion.
  std::string block_name_of(const Plan& plan, int expand_step, int project_step) const {
    const int project_layer = plan.steps()[size_t(project_step)].layer;
    std::string stem;
    if (expand_step >= 0) {
      const int expand_layer = plan.steps()[size_t(expand_step)].layer;
      if (expand_layer == 0) stem = model_->layers()[0].name + "+";
    }
    for (const BlockInfo& b : model_->blocks())
      if (b.project == project_layer) return stem + b.name + " (fused)";
    return "block";
  }

  // A chunked block's weights cut per chunk (plan.hpp): the depthwise taps
  // [kh * kw][chunk] and the project conv's rows of the chunk, packed on
  // their own so the kernels read them as a whole conv with K = chunk.
  struct ChunkWeights {
    std::vector<AlignedFloats> depthwise, project;
  };
  ChunkWeights cut_chunk_weights(const Plan& plan, const ChunkedBlock& c) const {
    const ConvLayer& dw = model_->layers()[size_t(plan.steps()[size_t(c.depthwise_step)].layer)];
    const ConvLayer& pr = model_->layers()[size_t(plan.steps()[size_t(c.project_step)].layer)];
    const int channels = dw.out_channels, taps = dw.kernel_h * dw.kernel_w, out_c = pr.out_channels;
    ChunkWeights w;
    std::vector<float> rows;
    for (int c0 = 0; c0 < channels; c0 += c.chunk_channels) {
      const int n = std::min(c.chunk_channels, channels - c0);
      AlignedFloats taps_of_chunk(size_t(taps) * size_t(n));
      for (int t = 0; t < taps; ++t)
        for (int j = 0; j < n; ++j)
          taps_of_chunk[size_t(t) * size_t(n) + size_t(j)] = dw.weights[size_t(t) * size_t(channels) + size_t(c0 + j)];
      rows.assign(size_t(n) * size_t(out_c), 0.0f);
      for (int r = 0; r < n; ++r)
        for (int col = 0; col < out_c; ++col)
          rows[size_t(r) * size_t(out_c) + size_t(col)] = pr.weights[packed_index(channels, c0 + r, col)];
      w.depthwise.push_back(std::move(taps_of_chunk));
      w.project.push_back(pack_weights(rows.data(), n, out_c));
    }
    return w;
  }

  // Runs chunked block `c` (weights `w`) over `images` images stacked in
  // the group arena: per chunk, the expand conv's columns into the expanded
  // slot, the depthwise conv into the depthwise slot (both [images][H][W]
  // [chunk]), then the project conv's rows of the chunk into the output:
  // the first chunk starts at the bias, the others continue the stored
  // chains (bias null), the last adds the residual and the activation.
  void run_chunked_block(const ChunkedBlock& c, const ChunkWeights& w, float* group_arena,
                         int images) {
    const KernelSet& k = kernels_;
    const PlanStep& ex = plan().steps()[size_t(c.expand_step)];
    const PlanStep& dw = plan().steps()[size_t(c.depthwise_step)];
    const PlanStep& pr = plan().steps()[size_t(c.project_step)];
    const auto& layers = model_->layers();
    const ConvLayer& expand = layers[size_t(ex.layer)];
    const ConvLayer& depthwise = layers[size_t(dw.layer)];
    const ConvLayer& project = layers[size_t(pr.layer)];
    auto slot = [&](int s) { return group_arena + plan().group_slot_offset(s); };
    const float* input = slot(ex.input_slot);
    float* expanded = slot(ex.output_slot);
    float* depthwise_out = slot(dw.output_slot);
    float* output = slot(pr.output_slot);
    const float* residual = pr.residual_slot >= 0 ? slot(pr.residual_slot) : nullptr;
    const ConvGeometry& gd = dw.geometry;
    const size_t in_pixels = size_t(images) * size_t(gd.in_h) * size_t(gd.in_w);
    const size_t out_pixels = size_t(images) * size_t(gd.out_h) * size_t(gd.out_w);
    const int channels = gd.in_c, out_c = pr.geometry.out_c;
    for (size_t i = 0, c0 = 0; c0 < size_t(channels); ++i, c0 += size_t(c.chunk_channels)) {
      const int n = std::min(c.chunk_channels, channels - int(c0));
      const bool first = i == 0, last = c0 + size_t(c.chunk_channels) >= size_t(channels);
      k.pointwise(input, 0, in_pixels, ex.geometry.in_c,
                  packed_panel(expand.weights.data(), ex.geometry.in_c, int(c0)),
                  expand.bias.data() + c0, n, expand.activation, nullptr, expanded, 0, n);
      ConvGeometry g = gd;
      g.in_c = g.out_c = n;
      const size_t image_in = size_t(gd.in_h) * size_t(gd.in_w) * size_t(n);
      const size_t image_out = size_t(gd.out_h) * size_t(gd.out_w) * size_t(n);
      for (int img = 0; img < images; ++img)
        k.depthwise(g, expanded + size_t(img) * image_in, w.depthwise[i].data(),
                    depthwise.bias.data() + c0, depthwise.activation,
                    depthwise_out + size_t(img) * image_out, 0, g.out_h);
      k.pointwise(depthwise_out, 0, out_pixels, n, w.project[i].data(),
                  first ? project.bias.data() : nullptr, out_c,
                  last ? project.activation : Activation::none, last ? residual : nullptr, output,
                  0, out_c);
    }
  }

  // One arena (and group arena) per image in flight (one per thread when
  // images run in parallel, else one: a second 4 MB arena would only add to
  // the resident set) and one scratch tile per thread. Only the buffers this
  // run uses grow to the plan's sizes (an arena left from a parallel batch
  // is not grown for a single image); none shrinks until the input changes,
  // so no run allocates after the first of its kind.
  void ensure_buffers(int arenas, int threads) {
    if (arenas_.size() < size_t(arenas)) arenas_.resize(size_t(arenas));
    if (group_arenas_.size() < size_t(arenas)) group_arenas_.resize(size_t(arenas));
    for (size_t i = 0; i < size_t(arenas); ++i) {
      if (arenas_[i].size() < plan().arena_floats()) arenas_[i].assign(plan().arena_floats(), 0.0f);
      if (group_arenas_[i].size() < plan().group_arena_floats())
        group_arenas_[i].assign(plan().group_arena_floats(), 0.0f);
    }
    if (scratch_.size() < size_t(threads)) scratch_.resize(size_t(threads));
    scratch_ptrs_.resize(scratch_.size());
    for (size_t t = 0; t < scratch_.size(); ++t) {
      if (t < size_t(threads) && scratch_[t].size() < plan().scratch_floats() + 16)
        scratch_[t].assign(plan().scratch_floats() + 16, 0.0f);
      // 64-byte aligned start inside the vector.
      float* p = scratch_[t].data();
      while (reinterpret_cast<uintptr_t>(p) % 64 != 0) ++p;
      scratch_ptrs_[t] = p;
    }
  }

  // Images run in parallel (one thread each) when there are enough of them,
  // else one after another with the threads inside each layer.
  bool images_in_parallel(int n) const {
    const int threads = thread_count();
    return threads > 1 && n >= threads && !options_.profile;
  }
  int threads_inside_image(int n) const { return images_in_parallel(n) ? 1 : thread_count(); }

  // Images one thread runs through the grouped tail together: up to
  // kMaxGroupImages (4 reads a 7x7 layer's weights a quarter as often; the
  // group's maps, 0.7 MB per image, stay near L2). The plan is made for
  // full groups whenever a thread runs more than one image, so batch sizes
  // 2..N share one plan and one set of buffers.
  static constexpr int kMaxGroupImages = 4;
  int group_images(int n) const {
    if (threads_inside_image(n) > 1) return 1;
    const int workers = images_in_parallel(n) ? thread_count() : 1;
    return (n + workers - 1) / workers > 1 ? kMaxGroupImages : 1;
  }

  // Runs every image and calls finish(image, result, worker) with its last
  // step's output (in worker's arenas, valid until the worker's next group).
  // Worker w takes images w, w + W, ... in groups of the plan's group size.
  template <typename Finish>
  void run_batch(const float* images, int n, Finish finish) {
    const int threads = thread_count();
    const bool parallel = images_in_parallel(n);
    const int workers = parallel ? threads : 1;
    ensure_buffers(workers, threads);  // allocates on the first run of a plan
    const size_t image_floats = size_t(plan().height()) * size_t(plan().width()) * 3;
    auto work = [&](int w, int threads_per_image) {
      int ids[kMaxGroupImages];
      int count = 0;
      for (int i = w; i < n; i += workers) {
        ids[count++] = i;
        if (count < plan().group_images() && i + workers < n) continue;
        if (plan().group_images() == 1) {
          finish(i, forward(images + size_t(i) * image_floats, w, threads_per_image), w);
        } else {
          float* group = group_arenas_[size_t(w)].data();
          const size_t start = plan().group_start();
          const PlanStep& first = plan().steps()[start];
          const size_t in_floats = size_t(first.geometry.in_h) * size_t(first.geometry.in_w) *
                                   size_t(first.geometry.in_c);
          float* tail_input = group + plan().group_slot_offset(first.input_slot);
          for (int g = 0; g < count; ++g) {
            const float* head = forward(images + size_t(ids[g]) * image_floats, w,
                                        threads_per_image, start);
            std::copy(head, head + in_floats, tail_input + size_t(g) * in_floats);
          }
          const float* result = run_steps(group, true, start, plan().steps().size(), count,
                                          threads_per_image, w);
          const size_t out_floats = plan().output_shape().elements();
          for (int g = 0; g < count; ++g) finish(ids[g], result + size_t(g) * out_floats, w);
        }
        count = 0;
      }
    };
    if (parallel) {
#pragma omp parallel for num_threads(threads) schedule(static, 1)
      for (int w = 0; w < workers; ++w) work(w, 1);
    } else {
      work(0, threads);
    }
  }

  int thread_count() const {
#ifdef _OPENMP
    return options_.threads > 0 ? options_.threads : omp_get_max_threads();
#else
    return 1;
#endif
  }

  // Normalises one image into arena `arena_index`, runs steps [0, last)
  // there and returns the last one's output (inside that arena).
  const float* forward(const float* image, int arena_index, int threads,
                       size_t last = size_t(-1)) {
    float* arena = arenas_[size_t(arena_index)].data();
    const size_t pixels = size_t(plan().height()) * size_t(plan().width());
    float* input = arena + plan().slot_offset(kSlotInput);
    const float scale = model_->input_scale(), offset = model_->input_offset();
    for (size_t i = 0; i < pixels * 3; ++i) input[i] = scale * image[i] + offset;
    return run_steps(arena, false, 0, std::min(last, plan().steps().size()), 1, threads,
                     arena_index);
  }

  // Runs steps [first, last) on `images` images stacked in each slot of
  // `arena` (the group arena when `grouped`, else an image arena). Only the
  // head (one image) holds fused blocks. Returns the last step's output.
  const float* run_steps(float* arena, bool grouped, size_t first, size_t last, int images,
                         int threads, int arena_index) {
    auto slot = [&](int s) {
      return arena + (grouped ? plan().group_slot_offset(s) : plan().slot_offset(s));
    };
    const float* out = slot(plan().steps()[first].input_slot);
    const KernelSet k = kernels_;
    const auto& fused = plan().fused_blocks();
    size_t next_fused = 0;
    while (next_fused < fused.size() && size_t(fused[next_fused].project_step) < first) ++next_fused;
    const auto& chunked = plan().chunked_blocks();
    size_t next_chunked = 0;
    for (size_t si = first; si < last; ++si) {
      const PlanStep& step = plan().steps()[si];
      const auto t0 = options_.profile ? std::chrono::steady_clock::now()
                                       : std::chrono::steady_clock::time_point();
      while (next_chunked < chunked.size() && size_t(chunked[next_chunked].expand_step) < si) ++next_chunked;
      if (grouped && next_chunked < chunked.size() && size_t(chunked[next_chunked].expand_step) == si &&
          size_t(chunked[next_chunked].project_step) < last) {
        const ChunkedBlock& c = chunked[next_chunked];
        run_chunked_block(c, runs_[current_].chunk_weights[next_chunked], arena, images);
        si = size_t(c.project_step);
        if (options_.profile)
          runs_[current_].profile[si].ms += std::chrono::duration<double, std::milli>(
                                 std::chrono::steady_clock::now() - t0).count();
        out = slot(plan().steps()[si].output_slot);
        continue;
      }
      if (next_fused < fused.size() &&
          int(si) == (fused[next_fused].expand_step >= 0 ? fused[next_fused].expand_step
                                                         : fused[next_fused].depthwise_step)) {
        const FusedBlock& f = fused[next_fused++];
        const auto& layers = model_->layers();
        const PlanStep& dw = plan().steps()[size_t(f.depthwise_step)];
        const PlanStep& pr = plan().steps()[size_t(f.project_step)];
        FusedBlockArgs a;
        if (f.expand_step >= 0) {
          const PlanStep& ex = plan().steps()[size_t(f.expand_step)];
          a.expand = &layers[size_t(ex.layer)];
          a.expand_geometry = ex.geometry;
        }
        a.depthwise = &layers[size_t(dw.layer)];
        a.depthwise_geometry = dw.geometry;
        a.project = &layers[size_t(pr.layer)];
        a.project_geometry = pr.geometry;
        a.input = slot(step.input_slot);
        a.residual = pr.residual_slot >= 0 ? slot(pr.residual_slot) : nullptr;
        a.output = slot(pr.output_slot);
        run_fused_block(k, f, a, threads, scratch_ptrs_.data() + (threads > 1 ? 0 : arena_index));
        si = size_t(f.project_step);
        if (options_.profile)
          runs_[current_].profile[si].ms += std::chrono::duration<double, std::milli>(
                                 std::chrono::steady_clock::now() - t0).count();
        out = a.output;
        continue;
      }
      const ConvLayer& layer = model_->layers()[size_t(step.layer)];
      const ConvGeometry& g = step.geometry;
      const float* src = slot(step.input_slot);
      float* dst = slot(step.output_slot);
      const float* residual = step.residual_slot >= 0 ? slot(step.residual_slot) : nullptr;
      const float* w = layer.weights.data();
      const float* b = layer.bias.data();
      const Activation act = layer.activation;
      if (g.kernel_h == 1 && g.kernel_w == 1 && g.stride == 1 && !layer.depthwise) {
        // One thread takes pixels in blocks whose inputs fit in half of L2
        // (the whole 7x7 map of a group or image): the kernel walks the
        // weights a column panel at a time over a block's pixels, so each
        // panel is read once per block. 48-pixel tasks streamed all the
        // weights again per task (1.6 MB for Conv_1) and cut a 49-pixel
        // map into 48 + 1.
        // Several threads share tasks of 48 pixels (a multiple of the 12-
        // and 6-row register tiles) with all channels. A small map (the 7x7
        // layers' 49 pixels) is split by output channels instead, one equal
        // share of 16-column panels per thread (160 -> 80 + 80), so threads
        // get equal work rather than 48 pixels and 1, and each reads only
        // its share of the weights.
        const int64_t out_pixels = int64_t(images) * g.out_h * g.out_w;  // images stacked
        const int64_t pixel_tasks = (out_pixels + 47) / 48;
        if (threads <= 1) {
          const int64_t block = std::max<int64_t>(
              48, int64_t(kPointwiseBlockBytes / (sizeof(float) * size_t(g.in_c))));
          const int64_t blocks = (out_pixels + block - 1) / block;
          for (int64_t i = 0; i < blocks; ++i)
            k.pointwise(src, size_t(out_pixels * i / blocks), size_t(out_pixels * (i + 1) / blocks),
                        g.in_c, w, b, g.out_c, act, residual, dst, 0, g.out_c);
        } else if (pixel_tasks < 4 * threads) {
          const int panels = int(padded_columns(g.out_c) / kPanelWidth);
#pragma omp parallel for num_threads(threads) schedule(static)
          for (int t = 0; t < threads; ++t) {
            const int c0 = std::min(g.out_c, panels * t / threads * kPanelWidth);
            const int c1 = std::min(g.out_c, panels * (t + 1) / threads * kPanelWidth);
            if (c1 > c0)
              k.pointwise(src, 0, size_t(out_pixels), g.in_c, w, b, g.out_c, act, residual, dst, c0, c1);
          }
        } else {
#pragma omp parallel for num_threads(threads) schedule(static)
          for (int64_t pt = 0; pt < pixel_tasks; ++pt)
            k.pointwise(src, size_t(pt * 48), size_t(std::min((pt + 1) * 48, out_pixels)), g.in_c, w,
                        b, g.out_c, act, residual, dst, 0, g.out_c);
        }
      } else {
        const ConvKernel conv = layer.depthwise ? k.depthwise : k.conv2d;
        const size_t in_floats = size_t(g.in_h) * size_t(g.in_w) * size_t(g.in_c);
        const size_t out_floats = size_t(g.out_h) * size_t(g.out_w) * size_t(g.out_c);
        for (int img = 0; img < images; ++img) {
          const float* image_src = src + size_t(img) * in_floats;
          float* image_dst = dst + size_t(img) * out_floats;
          // One contiguous share of rows per thread: a kernel may take rows
          // in pairs (depthwise on AVX-512).
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
          for (int t = 0; t < threads; ++t)
            conv(g, image_src, w, b, act, image_dst, int(int64_t(g.out_h) * t / threads),
                 int(int64_t(g.out_h) * (t + 1) / threads));
        }
      }
      if (options_.profile)
        runs_[current_].profile[si].ms += std::chrono::duration<double, std::milli>(
                               std::chrono::steady_clock::now() - t0).count();
      out = dst;
    }
    return out;
  }

  static void pool(const KernelSet& k, const float* map, const TensorShape& s, Pool p, float* dst) {
    const size_t pixels = size_t(s.height) * size_t(s.width);
    if (p == Pool::avg) k.avg_pool(map, pixels, s.channels, dst);
    else if (p == Pool::max) k.max_pool(map, pixels, s.channels, dst);
    else std::copy(map, map + s.elements(), dst);
  }

  std::shared_ptr<const Model> model_;
  ExtractorOptions options_;
  // A plan with what it was made for and its per-step times.
  struct PlannedRun {
    Plan plan;
    std::string layer;
    int threads_per_image = 0;
    int group = 0;
    std::vector<LayerTime> profile;
    std::vector<ChunkWeights> chunk_weights;  // per chunked block of the plan
  };
  // One input size and layer: usually at most 3 kinds (threads inside an
  // image; images in parallel, one or several per thread); an index, not a
  // pointer, so a copied Extractor stays valid.
  std::vector<PlannedRun> runs_;
  size_t current_ = 0;
  KernelSet kernels_;
  std::vector<std::vector<float>> arenas_;
  std::vector<std::vector<float>> group_arenas_;
  std::vector<std::vector<float>> scratch_;
  std::vector<float*> scratch_ptrs_;
  std::vector<float> features_;
};

}  // namespace featx
