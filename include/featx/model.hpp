// featx/model.hpp: an immutable, verified MobileNetV2 with batch norm folded.
//
// Loading checks, in order: the file exists and is non-empty; the FlatBuffers
// identifier "FTX1"; the FlatBuffers verifier (bounds of every table and
// vector); the format version; the CRC-32C of the payload; then the network's
// own consistency (channel counts chain, weight vector sizes match their
// shapes, strides and kernel sizes in range). Only then is batch norm folded:
//   w' = w * gamma / sqrt(var + eps),  b' = beta + (b - mean) * gamma / sqrt(var + eps)
// computed in double and rounded once to float. The folded copies are the
// only weight copies made; `folded_bytes()` reports their size.
//
// A prepacked file (format version 3, export_weights.py --prepacked) carries
// the weights already folded and packed; they are used in place, from the
// mapped file or the caller's embedded array, and folded_bytes() is 0
// (docs/embedded.md).
//
// A Model is immutable after load and safe to share between threads; each
// thread runs its own Extractor over it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "featx/crc32c.hpp"
#include "featx/detail/checked_size.hpp"
#include "featx/head.hpp"
#include "featx/kernels/activation.hpp"
#include "featx/kernels/packed_weights.hpp"
#include "featx/mapped_file.hpp"
#include "featx/schema/featx_generated.h"
#include "featx/status.hpp"
#include "featx/weight_arena.hpp"

namespace featx {

// Version 2 files carry a dense head (the user's layers after pooling); a
// version-1 runtime refuses them rather than dropping the head. Version 3
// files are prepacked (every conv folded and packed, see featx.fbs).
constexpr uint32_t kFormatVersion = 3;
constexpr uint32_t kPrepackedFormatVersion = 3;
// Where a prepacked file's float vectors start (the exporter pads to it) and
// what an embedded prepacked array must be aligned to.
constexpr size_t kPrepackedAlignment = 64;
// The largest resolution a model file may state: the largest square input a
// plan takes (2^26 pixels, step_plan.hpp).
constexpr int kMaxResolution = 8192;

// One convolution after batch-norm folding. Depthwise weights are
// [kh][kw][channels] as in TensorFlow. Full and 1x1 conv weights are
// TensorFlow's [kh][kw][in][out] viewed as a [kh*kw*in][out] matrix and
// packed in 16-column panels for the GEMM kernels (kernels/packed_weights.hpp);
// kernel_value() reads either layout by its TensorFlow indices. Weights and
// bias are in the Model's weight arena, or in the file itself when it is
// prepacked.
struct ConvLayer {
  std::string name;
  bool depthwise = false;
  int kernel_h = 1, kernel_w = 1, stride = 1;
  int in_channels = 0, out_channels = 0;
  Activation activation = Activation::none;
  FloatSpan weights;
  FloatSpan bias;  // [out_channels], always present after folding

  // Rows of the packed weight matrix (kh*kw*in); 0 for depthwise layers.
  int weight_rows() const { return depthwise ? 0 : kernel_h * kernel_w * in_channels; }
  // The folded weight at TensorFlow index [ky][kx][in][out] (depthwise: `in`
  // is ignored and `out` is the channel).
  float kernel_value(int ky, int kx, int in, int out) const {
    const int tap = ky * kernel_w + kx;
    if (depthwise) return weights[size_t(tap) * size_t(out_channels) + size_t(out)];
    return weights[packed_index(weight_rows(), tap * in_channels + in, out)];
  }
};

// Indices into Model::layers() of one inverted-residual block.
struct BlockInfo {
  std::string name;
  int expansion = 1, stride = 1, in_channels = 0, out_channels = 0;
  bool residual = false;
  int expand = -1;  // -1 when the block has no expansion conv
  int depthwise = -1, project = -1;
};

// A golden sample stored in the model file, viewed in place.
struct GoldenView {
  std::string name, pool, reference;
  int height = 0, width = 0;
  const float* input = nullptr;  // [height][width][3]
  const float* output = nullptr;
  size_t output_size = 0;
  float max_abs_tolerance = 5e-5f;
};

// Bounds on an untrusted model file, checked before anything is read past
// the header: MobileNetV2 1.4 with a large Dense head is under 100 MB and 70
// layers, so the defaults only stop files that are not what they claim.
// Every vector a file declares must also lie inside it (FlatBuffers
// verifier), so the byte limit bounds every weight allocation too.
#ifndef FEATX_MAX_MODEL_BYTES
#define FEATX_MAX_MODEL_BYTES (uint64_t(1) << 30)
#endif
#ifndef FEATX_MAX_MODEL_LAYERS
#define FEATX_MAX_MODEL_LAYERS 256
#endif
struct ModelLimits {
  uint64_t max_file_bytes = FEATX_MAX_MODEL_BYTES;
  uint32_t max_layers = FEATX_MAX_MODEL_LAYERS;  // conv layers (3 per block at most) and Dense layers
};

class Model {
 public:
  // Loads a .featx file (memory-mapped on POSIX).
  static Status load(const std::string& path, std::shared_ptr<const Model>* out) {
    return load(path, ModelLimits(), out);
  }
  static Status load(const std::string& path, const ModelLimits& limits, std::shared_ptr<const Model>* out) {
    ByteSource bytes;
    FEATX_RETURN_IF_ERROR(ByteSource::open(path, &bytes));
    return from_source(std::move(bytes), path, limits, out);
  }

  // Copies `size` bytes from `data`; the caller may free them afterwards.
  static Status from_memory(const void* data, size_t size, const std::string& name,
                            std::shared_ptr<const Model>* out) {
    return from_memory(data, size, name, ModelLimits(), out);
  }
  static Status from_memory(const void* data, size_t size, const std::string& name, const ModelLimits& limits,
                            std::shared_ptr<const Model>* out) {
    if (uint64_t(size) > limits.max_file_bytes) return too_large(name, size, limits);
    ByteSource bytes;
    FEATX_RETURN_IF_ERROR(ByteSource::copy(data, size, name, &bytes));
    return from_source(std::move(bytes), name, limits, out);
  }

  // Uses `data` in place (e.g. an array embedded in the binary); it must stay
  // alive and unchanged as long as the Model. A raw file that is not 16-byte
  // aligned is copied (its weights are copied when folded anyway); a
  // prepacked one must be 64-byte aligned, since its weights run from it:
  // otherwise it is refused, not copied behind the caller's back.
  static Status from_embedded(const void* data, size_t size, const std::string& name,
                              std::shared_ptr<const Model>* out) {
    const uintptr_t address = reinterpret_cast<uintptr_t>(data);
    if (address % kPrepackedAlignment != 0 &&
        peek_format_version(data, size) == kPrepackedFormatVersion)
      return invalid_argument(name + ": prepacked model is not 64-byte aligned (its weights are used "
                              "in place): declare the array alignas(64), or put .balign 64 before "
                              "its .incbin");
    if (address % 16 != 0) return from_memory(data, size, name, out);
    return from_source(ByteSource::borrow(data, size), name, ModelLimits(), out);
  }

  const std::string& name() const { return name_; }
  float input_scale() const { return input_scale_; }
  float input_offset() const { return input_offset_; }
  float width_multiplier() const { return width_multiplier_; }
  int resolution() const { return resolution_; }
  int feature_dim() const { return layers_.empty() ? 0 : layers_.back().out_channels; }
  const std::string& feature_layer() const { return layers_.back().name; }
  const std::vector<ConvLayer>& layers() const { return layers_; }
  const std::vector<BlockInfo>& blocks() const { return blocks_; }
  // The Dense layers after pooling (the user's head, or a .tflite's ImageNet
  // logits as one linear layer "Logits"); empty for a bare feature extractor.
  const std::vector<DenseLayer>& head() const { return head_; }
  bool has_classifier() const { return !head_.empty(); }
  int num_classes() const { return head_.empty() ? 0 : head_.back().out_features; }
  // Class names stored in the model (empty when it has none).
  const std::vector<std::string>& labels() const { return labels_; }
  // Line of a labels file that names class 0 (1001-line ImageNet files with
  // a background line for 1000-class models: 0 or 1).
  int label_offset() const { return label_offset_; }
  // Deprecated (head() replaced it): a one-layer head (a classification
  // .tflite's logits) as the classifier it used to be; empty otherwise.
  struct ClassifierView {
    int num_classes = 0, label_offset = 0;
    FloatSpan weights, bias;  // [classes][features], [classes]
  };
  ClassifierView classifier() const {
    if (head_.size() != 1) return {};
    return {num_classes(), label_offset_, head_[0].weights, head_[0].bias};
  }
  // Index into head() of the Dense layer called `name`, or -1.
  int find_dense(const std::string& layer_name) const {
    for (size_t i = 0; i < head_.size(); ++i)
      if (head_[i].name == layer_name) return static_cast<int>(i);
    return -1;
  }
  const std::string& source() const { return source_; }
  const std::string& source_format() const { return source_format_; }
  const std::string& exporter_version() const { return exporter_version_; }
  uint32_t format_version() const { return format_version_; }
  // True for a prepacked file: every conv's weights and bias (and a
  // classifier) are read in place from the file, nothing is folded or copied.
  bool prepacked() const { return prepacked_; }
  size_t file_bytes() const { return bytes_.size(); }
  bool memory_mapped() const { return bytes_.mapped(); }
  // Bytes of weights copied at load (folded conv weights and biases,
  // classifier); 0 for a prepacked file.
  size_t folded_bytes() const { return folded_bytes_; }
  size_t parameter_count() const { return parameter_count_; }

  std::vector<GoldenView> goldens() const {
    std::vector<GoldenView> out;
    auto* goldens = network()->goldens();
    if (!goldens) return out;
    for (const auto* g : *goldens) {
      GoldenView v;
      v.name = g->name() ? g->name()->str() : "";
      v.pool = g->pool() ? g->pool()->str() : "avg";
      v.reference = g->reference() ? g->reference()->str() : "";
      v.height = g->height();
      v.width = g->width();
      v.input = g->input()->data();
      v.output = g->output()->data();
      v.output_size = g->output()->size();
      v.max_abs_tolerance = g->max_abs_tolerance();
      out.push_back(v);
    }
    return out;
  }

  // Index of the conv layer called `name`, or -1.
  int find_layer(const std::string& layer_name) const {
    for (size_t i = 0; i < layers_.size(); ++i)
      if (layers_[i].name == layer_name) return static_cast<int>(i);
    return -1;
  }
  // Index of the block called `name`, or -1.
  int find_block(const std::string& block_name) const {
    for (size_t i = 0; i < blocks_.size(); ++i)
      if (blocks_[i].name == block_name) return static_cast<int>(i);
    return -1;
  }

 private:
  Model() = default;

  const fb::Network* network() const {
    return fb::GetModelFile(bytes_.data())->payload_nested_root();
  }

  // The ModelFile's format_version read without trusting alignment or
  // content (memcpy, bounds checked): only to choose from_embedded's error.
  // 0 when the bytes are not a readable featx header.
  static uint32_t peek_format_version(const void* data, size_t size) {
    const uint8_t* p = static_cast<const uint8_t*>(data);
    auto u32 = [&](size_t at, uint32_t* v) {
      if (at > size || size - at < 4) return false;
      std::memcpy(v, p + at, 4);
      return true;
    };
    uint32_t root = 0, vtable_back = 0, version = 0;
    if (!p || size < 8 || std::memcmp(p + 4, fb::ModelFileIdentifier(), 4) != 0) return 0;
    if (!u32(0, &root) || !u32(root, &vtable_back)) return 0;
    const int32_t soffset = int32_t(vtable_back);
    const int64_t vtable = int64_t(root) - int64_t(soffset);
    if (vtable < 0 || uint64_t(vtable) + 6 > size) return 0;
    uint16_t vtable_bytes = 0, field = 0;
    std::memcpy(&vtable_bytes, p + vtable, 2);
    const size_t slot = size_t(fb::ModelFile::VT_FORMAT_VERSION);
    if (vtable_bytes < slot + 2) return 0;  // absent: the default, 0
    std::memcpy(&field, p + vtable + slot, 2);
    if (field == 0 || !u32(size_t(root) + field, &version)) return 0;
    return version;
  }

  static Status too_large(const std::string& name, uint64_t bytes, const ModelLimits& limits) {
    return invalid_argument(name + ": " + std::to_string(bytes) + " bytes, more than the limit of " +
                            std::to_string(limits.max_file_bytes) +
                            " for a model file (ModelLimits::max_file_bytes, FEATX_MAX_MODEL_BYTES)");
  }

  static Status from_source(ByteSource bytes, const std::string& name, const ModelLimits& limits,
                            std::shared_ptr<const Model>* out) {
    if (uint64_t(bytes.size()) > limits.max_file_bytes) return too_large(name, bytes.size(), limits);
    std::shared_ptr<Model> model(new Model());
    model->bytes_ = std::move(bytes);
    model->name_ = name;
    model->max_layers_ = limits.max_layers;
    FEATX_RETURN_IF_ERROR(model->verify_container());
    FEATX_RETURN_IF_ERROR(model->read_network());
    *out = std::move(model);
    return Status::Ok();
  }

  // `what` may quote the file's own strings (layer names): kept to one line.
  Status fail(const std::string& what) const { return corrupt(name_ + ": " + printable(what)); }

  Status verify_container() {
    const uint8_t* p = bytes_.data();
    size_t n = bytes_.size();
    if (n == 0) return fail("empty file, not a featx model");
    if (n < 8) return fail("truncated (" + std::to_string(n) + " bytes), not a featx model");
    if (std::memcmp(p + 4, fb::ModelFileIdentifier(), 4) != 0) {
      std::string found;
      for (int i = 4; i < 8; ++i) found += (p[i] >= 32 && p[i] < 127) ? char(p[i]) : '?';
      return fail("wrong file identifier '" + found + "' (expected 'FTX1'): not a featx model");
    }
    if (reinterpret_cast<uintptr_t>(p) % 8 != 0) return fail("buffer is not 8-byte aligned");
    flatbuffers::Verifier verifier(p, n);
    if (!fb::VerifyModelFileBuffer(verifier))
      return fail("FlatBuffers verification failed: truncated or corrupt model file");
    const fb::ModelFile* file = fb::GetModelFile(p);
    if (file->format_version() < 1 || file->format_version() > kFormatVersion)
      return Status(StatusCode::unsupported,
                    name_ + ": format version " + std::to_string(file->format_version()) +
                        " is not supported (this featx reads versions 1 to " +
                        std::to_string(kFormatVersion) + ")");
    format_version_ = file->format_version();
    prepacked_ = format_version_ == kPrepackedFormatVersion;
    const auto* payload = file->payload();
    uint32_t crc = crc32c(payload->data(), payload->size());
    if (crc != file->payload_crc32c())
      return fail("checksum mismatch (payload corrupt): stored " + hex(file->payload_crc32c()) +
                  ", computed " + hex(crc));
    return Status::Ok();
  }

  static std::string hex(uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", v);
    return buf;
  }

  static size_t vec_size(const flatbuffers::Vector<float>* v) { return v ? v->size() : 0; }

  Status read_conv(const fb::ConvLayer* src, const char* role, ConvLayer* dst) {
    if (!src) return fail(std::string("missing ") + role + " layer");
    dst->name = src->name()->str();
    const std::string& n = dst->name;
    dst->depthwise = src->kind() == fb::ConvKind::DEPTHWISE;
    dst->kernel_h = src->kernel_h();
    dst->kernel_w = src->kernel_w();
    dst->stride = src->stride();
    dst->in_channels = src->in_channels();
    dst->out_channels = src->out_channels();
    if (dst->kernel_h < 1 || dst->kernel_h > 15 || dst->kernel_w < 1 || dst->kernel_w > 15)
      return fail(n + ": kernel size " + std::to_string(dst->kernel_h) + "x" +
                  std::to_string(dst->kernel_w) + " out of range");
    if (dst->stride < 1 || dst->stride > 4)
      return fail(n + ": stride " + std::to_string(dst->stride) + " out of range");
    if (dst->in_channels < 1 || dst->in_channels > 65536 || dst->out_channels < 1 ||
        dst->out_channels > 65536)
      return fail(n + ": channel counts " + std::to_string(dst->in_channels) + " -> " +
                  std::to_string(dst->out_channels) + " out of range");
    if (dst->depthwise && dst->in_channels != dst->out_channels)
      return fail(n + ": depthwise conv with " + std::to_string(dst->in_channels) + " -> " +
                  std::to_string(dst->out_channels) + " channels (only multiplier 1 is supported)");
    switch (src->activation()) {
      case fb::Activation::NONE: dst->activation = Activation::none; break;
      case fb::Activation::RELU6: dst->activation = Activation::relu6; break;
      case fb::Activation::RELU: dst->activation = Activation::relu; break;
      default: return fail(n + ": unknown activation " + std::to_string(int(src->activation())));
    }
    const size_t cout = size_t(dst->out_channels);
    const size_t taps = size_t(dst->kernel_h) * size_t(dst->kernel_w);
    const uint64_t shape_values = detail::wide_product(taps, dst->depthwise ? 1 : uint64_t(dst->in_channels), cout);
    if (shape_values > uint64_t(SIZE_MAX))  // 32-bit targets
      return fail(n + ": shape needs " + std::to_string(shape_values) +
                  " weights, more than this target can address");
    const size_t expected = size_t(shape_values);
    if (prepacked_ || src->packed()) return read_packed(src, expected, dst);
    if (src->kernel()->size() != expected)
      return fail(n + ": kernel has " + std::to_string(src->kernel()->size()) +
                  " values, shape needs " + std::to_string(expected));
    if (src->bias() && src->bias()->size() != cout)
      return fail(n + ": bias has " + std::to_string(src->bias()->size()) + " values, expected " +
                  std::to_string(cout));
    const fb::BatchNorm* bn = src->batch_norm();
    if (bn) {
      if (vec_size(bn->gamma()) != cout || vec_size(bn->beta()) != cout ||
          vec_size(bn->moving_mean()) != cout || vec_size(bn->moving_variance()) != cout)
        return fail(n + ": batch norm parameters do not have " + std::to_string(cout) + " values");
      if (!(bn->epsilon() >= 0.0f) || !std::isfinite(bn->epsilon()))
        return fail(n + ": batch norm epsilon is negative or not finite");
    }
    detail::SizeCheck unused;  // arena_floats() checked the sizes
    float* folded = weight_arena_.take(fold_floats(src, unused));
    float* folded_bias = weight_arena_.take(cout);
    if (!folded || !folded_bias) return fail(n + ": weight arena exhausted (inconsistent layer sizes)");
    const bool weights_finite = fold(src, dst, folded, folded_bias);
    // The folded copy is what runs: drop the file's pages of the raw kernel
    // so the resident set holds the weights once, not twice.
    bytes_.release_range(src->kernel()->data(), src->kernel()->size() * sizeof(float));
    if (!weights_finite) return fail(n + ": non-finite weight after batch-norm folding");
    for (float b : dst->bias)
      if (!std::isfinite(b)) return fail(n + ": non-finite bias after batch-norm folding");
    parameter_count_ += expected + dst->bias.size();
    folded_bytes_ += (dst->weights.size() + dst->bias.size()) * sizeof(float);
    return Status::Ok();
  }

  // A prepacked layer: weights and bias already folded and packed, checked
  // and used in place. `expected`: the weights the shape has (unpadded).
  Status read_packed(const fb::ConvLayer* src, size_t expected, ConvLayer* dst) {
    const std::string& n = dst->name;
    const fb::PackedConv* packed = src->packed();
    if (!packed)
      return fail(n + ": no prepacked weights in a prepacked (version 3) file");
    if (!prepacked_)
      return fail(n + ": prepacked weights in a version " + std::to_string(format_version_) +
                  " file (prepacked files are version 3)");
    if (src->kernel()->size() != 0 || src->bias() || src->batch_norm())
      return fail(n + ": has raw weights beside its prepacked ones");
    if (packed->panel_width() != kPanelWidth)
      return fail(n + ": weights packed in panels of " + std::to_string(packed->panel_width()) +
                  " columns, this featx runs " + std::to_string(kPanelWidth) +
                  " (re-export with export_weights.py --prepacked)");
    const size_t cout = size_t(dst->out_channels);
    const size_t rows = dst->depthwise ? 0 : size_t(dst->weight_rows());
    detail::SizeCheck size;
    const size_t floats = dst->depthwise ? expected : size.mul(rows, padded_columns(int(cout)));
    if (size.overflow)
      return fail(n + ": 16-column panels of its shape need more weights than this target can address");
    const auto* w = packed->weights();
    const auto* b = packed->bias();
    if (w->size() != floats)
      return fail(n + ": prepacked weights have " + std::to_string(w->size()) + " values, " +
                  (dst->depthwise ? "shape needs " : "16-column panels of its shape need ") +
                  std::to_string(floats));
    if (b->size() != cout)
      return fail(n + ": prepacked bias has " + std::to_string(b->size()) + " values, expected " +
                  std::to_string(cout));
    for (const void* v : {static_cast<const void*>(w->data()), static_cast<const void*>(b->data())})
      if (reinterpret_cast<uintptr_t>(v) % kPrepackedAlignment != 0)
        return fail(n + ": prepacked weights or bias not 64-byte aligned in the file");
    // One pass over the weights, as the fold's own check: finite values,
    // and zero columns where the last panel pads past the channels.
    const float* data = w->data();
    int bad = 0;
    for (size_t i = 0; i < floats; ++i) bad |= int(!(std::fabs(data[i]) <= std::numeric_limits<float>::max()));
    if (bad) return fail(n + ": non-finite prepacked weight");
    for (float x : *b)
      if (!std::isfinite(x)) return fail(n + ": non-finite prepacked bias");
    if (!dst->depthwise && cout % size_t(kPanelWidth) != 0) {
      const float* last = data + (padded_columns(int(cout)) - size_t(kPanelWidth)) * rows;
      for (size_t r = 0; r < rows; ++r)
        for (size_t j = cout % size_t(kPanelWidth); j < size_t(kPanelWidth); ++j)
          if (last[r * size_t(kPanelWidth) + j] != 0.0f)
            return fail(n + ": prepacked panel padding is not zero (not featx's panel layout)");
    }
    dst->weights = FloatSpan{data, floats};
    dst->bias = FloatSpan{b->data(), cout};
    parameter_count_ += expected + cout;
    return Status::Ok();
  }

  // to[j] = float(from[j] * scale[j]) in double; false if any result is not
  // finite. Branch-free so the compiler vectorises it.
  static bool scale_row(const float* from, const double* scale, size_t n, float* to) {
    int bad = 0;
    for (size_t j = 0; j < n; ++j) {
      const float w = float(double(from[j]) * scale[j]);
      bad |= int(!(std::fabs(w) <= std::numeric_limits<float>::max()));
      to[j] = w;
    }
    return bad == 0;
  }

  // Floats the folded copy of `src` takes: the kernel itself for depthwise
  // layers, with each row's columns padded to whole panels otherwise. Only
  // for sizing the arena: read_conv() checks the shapes before folding.
  static size_t fold_floats(const fb::ConvLayer* src, detail::SizeCheck& size) {
    const size_t n = src && src->kernel() ? src->kernel()->size() : 0;
    if (!src || src->kind() == fb::ConvKind::DEPTHWISE) return n;
    const int cout = std::max(1, std::min(src->out_channels(), 65536));
    return size.mul(n / size_t(cout), padded_columns(cout));
  }

  // Folds the optional conv bias and batch norm into weights and bias,
  // writing the weights to `out` (fold_floats(src) floats) and the bias to
  // `bias_out` (out_channels floats). Returns false when a folded weight is
  // not finite (checked on the way, not in a second pass over the weights).
  // tools/featx_export/prepack.py computes the same doubles for prepacked
  // files: keep the two in step, bit for bit.
  static bool fold(const fb::ConvLayer* src, ConvLayer* dst, float* out, float* bias_out) {
    const size_t cout = size_t(dst->out_channels);
    const auto* k = src->kernel();
    std::vector<double> scale(cout, 1.0), shift(cout, 0.0);
    for (size_t c = 0; c < cout; ++c) shift[c] = src->bias() ? double(src->bias()->Get(c)) : 0.0;
    if (const fb::BatchNorm* bn = src->batch_norm()) {
      for (size_t c = 0; c < cout; ++c) {
        double s = double(bn->gamma()->Get(c)) /
                   std::sqrt(double(bn->moving_variance()->Get(c)) + double(bn->epsilon()));
        scale[c] = s;
        // volatile: the product is rounded before the add, never fused into
        // an FMA (aarch64, -march=native): the same double on every build,
        // and the one numpy computes for a prepacked file.
        volatile double centred = (shift[c] - double(bn->moving_mean()->Get(c))) * s;
        shift[c] = double(bn->beta()->Get(c)) + centred;
      }
    }
    // The output channel is the fastest-moving index of the file's layout:
    // row r of the [rows][cout] matrix is contiguous in the file, and each
    // 16-column piece of it is one contiguous row of a packed panel.
    // Every element, padding included, is written below: the arena slice
    // arrives uninitialised, so there is no zeroing pass.
    const size_t rows = dst->depthwise ? k->size() / cout : size_t(dst->weight_rows());
    dst->weights = FloatSpan{out, dst->depthwise ? k->size() : packed_floats(int(rows), int(cout))};
    // The file is little-endian like every target featx builds for, so the
    // kernel is read as a plain float array (Get() per element is 3x slower).
    const float* raw = k->data();
    bool finite = true;
    for (size_t r = 0; r < rows; ++r) {
      for (size_t c0 = 0; c0 < cout; c0 += kPanelWidth) {
        float* dst_row = out + (dst->depthwise ? r * cout + c0
                                                               : packed_index(int(rows), int(r), int(c0)));
        const size_t n = cout - c0 < size_t(kPanelWidth) ? cout - c0 : size_t(kPanelWidth);
        finite &= scale_row(raw + r * cout + c0, scale.data() + c0, n, dst_row);
        if (!dst->depthwise)
          for (size_t j = n; j < size_t(kPanelWidth); ++j) dst_row[j] = 0.0f;  // panel padding
      }
    }
    for (size_t c = 0; c < cout; ++c) bias_out[c] = float(shift[c]);
    dst->bias = FloatSpan{bias_out, cout};
    return finite;
  }

  // Floats of the weight arena: every layer's folded weights and bias, and
  // the classifier; none for a prepacked file. `size` records a total whose
  // bytes would not fit size_t (32-bit targets).
  static size_t arena_floats(const fb::Network* net, detail::SizeCheck& size) {
    auto slice = [&](size_t floats) { return WeightArena::slice_floats(floats, size); };
    auto conv_floats = [&](const fb::ConvLayer* c) {
      if (!c) return size_t(0);
      return size.add(slice(fold_floats(c, size)), slice(size_t(std::max(0, std::min(c->out_channels(), 65536)))));
    };
    size_t total = size.add(conv_floats(net->stem()), conv_floats(net->head()));
    for (const fb::Block* b : *net->blocks())
      for (const fb::ConvLayer* c : {b->expand(), b->depthwise(), b->project()})
        total = size.add(total, conv_floats(c));
    if (const fb::Classifier* c = net->classifier())
      // weights + one bias per class; an inconsistent count is refused later.
      total = size.add(total, slice(size_t(c->weights()->size()) +
                                    std::min(size_t(c->weights()->size()), size_t(std::max(0, c->num_classes())))));
    size.mul(total, sizeof(float));
    return total;
  }

  Status read_network() {
    const fb::Network* net = network();
    if (net->architecture() && net->architecture()->str() != "mobilenet_v2")
      return Status(StatusCode::unsupported,
                    name_ + ": architecture '" + printable(net->architecture()->str()) + "' is not supported");
    const auto* norm = net->input_normalization();
    input_scale_ = norm->scale();
    input_offset_ = norm->offset();
    if (!std::isfinite(input_scale_) || !std::isfinite(input_offset_))
      return fail("input normalisation is not finite");
    width_multiplier_ = net->width_multiplier();
    resolution_ = net->resolution();
    // The input size featx resizes to and bench runs at: within what a plan takes.
    if (resolution_ < 1 || resolution_ > kMaxResolution)
      return fail("resolution " + std::to_string(resolution_) + " out of range (1 to " +
                  std::to_string(kMaxResolution) + ")");
    if (const auto* prov = net->provenance()) {
      if (prov->source()) source_ = prov->source()->str();
      if (prov->source_format()) source_format_ = prov->source_format()->str();
      if (prov->exporter_version()) exporter_version_ = prov->exporter_version()->str();
    }

    // Before any per-layer work: the layer count bounds the loops and tables below.
    const uint64_t layers = 2 + 3 * uint64_t(net->blocks()->size()) +
                            (net->dense_head() ? uint64_t(net->dense_head()->size()) : 0);
    if (layers > max_layers_)
      return Status(StatusCode::invalid_argument,
                    name_ + ": " + std::to_string(net->blocks()->size()) + " blocks and " +
                        std::to_string(net->dense_head() ? net->dense_head()->size() : 0) +
                        " Dense layers, more than the limit of " + std::to_string(max_layers_) +
                        " layers (ModelLimits::max_layers, FEATX_MAX_MODEL_LAYERS)");
    if (!prepacked_) {
      detail::SizeCheck size;
      const size_t floats = arena_floats(net, size);
      if (size.overflow)
        return fail("its folded weights need more memory than this target can address");
      if (!weight_arena_.reserve(floats))
        return Status(StatusCode::internal, name_ + ": out of memory for the folded weights");
    }
    ConvLayer stem;
    FEATX_RETURN_IF_ERROR(read_conv(net->stem(), "stem", &stem));
    if (stem.depthwise || stem.in_channels != 3)
      return fail(stem.name + ": the stem must be a full conv on 3 input channels");
    int channels = stem.out_channels;
    layers_.push_back(std::move(stem));

    for (const fb::Block* b : *net->blocks()) {
      BlockInfo info;
      info.name = b->name()->str();
      info.expansion = b->expansion();
      info.stride = b->stride();
      info.in_channels = b->in_channels();
      info.out_channels = b->out_channels();
      info.residual = b->residual();
      if (info.in_channels != channels)
        return fail(info.name + ": takes " + std::to_string(info.in_channels) +
                    " channels, previous layer gives " + std::to_string(channels));
      if (info.residual && (info.stride != 1 || info.in_channels != info.out_channels))
        return fail(info.name + ": residual add needs stride 1 and equal channel counts");
      int inner = channels;
      if (b->expand()) {
        ConvLayer e;
        FEATX_RETURN_IF_ERROR(read_conv(b->expand(), "expand", &e));
        if (e.depthwise || e.in_channels != channels || e.kernel_h != 1 || e.kernel_w != 1 ||
            e.stride != 1)
          return fail(e.name + ": expand must be a 1x1 stride-1 conv on " +
                      std::to_string(channels) + " channels");
        inner = e.out_channels;
        info.expand = int(layers_.size());
        layers_.push_back(std::move(e));
      }
      ConvLayer d;
      FEATX_RETURN_IF_ERROR(read_conv(b->depthwise(), "depthwise", &d));
      if (!d.depthwise || d.in_channels != inner || d.stride != info.stride)
        return fail(d.name + ": expected a depthwise conv on " + std::to_string(inner) +
                    " channels with stride " + std::to_string(info.stride));
      info.depthwise = int(layers_.size());
      layers_.push_back(std::move(d));
      ConvLayer p;
      FEATX_RETURN_IF_ERROR(read_conv(b->project(), "project", &p));
      if (p.depthwise || p.in_channels != inner || p.out_channels != info.out_channels ||
          p.kernel_h != 1 || p.kernel_w != 1 || p.stride != 1)
        return fail(p.name + ": project must be a 1x1 stride-1 conv " + std::to_string(inner) +
                    " -> " + std::to_string(info.out_channels));
      info.project = int(layers_.size());
      layers_.push_back(std::move(p));
      channels = info.out_channels;
      blocks_.push_back(std::move(info));
    }

    ConvLayer head;
    FEATX_RETURN_IF_ERROR(read_conv(net->head(), "head", &head));
    if (head.depthwise || head.in_channels != channels)
      return fail(head.name + ": head must be a full conv on " + std::to_string(channels) +
                  " channels");
    layers_.push_back(std::move(head));

    if (const fb::Classifier* c = net->classifier()) FEATX_RETURN_IF_ERROR(read_classifier(c));
    if (const auto* dense = net->dense_head()) {
      if (!head_.empty()) return fail("has both a classifier and a dense head");
      for (const fb::DenseLayer* d : *dense) FEATX_RETURN_IF_ERROR(read_dense(d));
    }
    if (const auto* labels = net->labels()) {
      if (head_.empty()) return fail("has labels but no classifier or dense head");
      if (labels->size() != size_t(num_classes()))
        return fail(std::to_string(labels->size()) + " labels for " +
                    std::to_string(num_classes()) + " outputs of its last layer");
      for (const auto* l : *labels) labels_.push_back(l->str());
    }

    if (const auto* goldens = net->goldens()) {
      for (const fb::GoldenSample* g : *goldens) {
        if (g->height() < 1 || g->width() < 1 ||
            uint64_t(g->input()->size()) != detail::wide_product(uint64_t(g->height()), uint64_t(g->width()), 3))
          return fail("golden sample input does not match its height x width x 3");
      }
    }
    return Status::Ok();
  }

  // A classification .tflite's ImageNet logits: one linear layer "Logits",
  // copied into the arena (the file's pages are released); in place from a
  // prepacked file ([classes][features] is the layout the head runs on).
  Status read_classifier(const fb::Classifier* c) {
    const size_t features = size_t(feature_dim());
    if (c->num_classes() < 1 || uint64_t(c->weights()->size()) != detail::wide_product(uint64_t(c->num_classes()), features))
      return fail("classifier weights have " + std::to_string(c->weights()->size()) +
                  " values, expected " + std::to_string(c->num_classes()) + " x " +
                  std::to_string(features));
    if (c->bias() && c->bias()->size() != size_t(c->num_classes()))
      return fail("classifier bias does not have one value per class");
    DenseLayer d;
    d.name = "Logits";
    d.in_features = int(features);
    d.out_features = c->num_classes();
    if (c->label_offset() < 0 || c->label_offset() > (1 << 20))
      return fail("classifier label offset " + std::to_string(c->label_offset()) + " out of range");
    label_offset_ = c->label_offset();
    const auto* weights = c->weights();
    if (prepacked_) {
      for (const auto* v : {weights, c->bias()})
        if (v)
          for (float x : *v)
            if (!std::isfinite(x)) return fail("classifier: non-finite weight");
      d.weights = FloatSpan{weights->data(), weights->size()};
      if (c->bias()) d.bias = FloatSpan{c->bias()->data(), c->bias()->size()};  // else none: 0
      parameter_count_ += d.weights.size() + size_t(d.out_features);
      head_.push_back(std::move(d));
      return Status::Ok();
    }
    float* copy = weight_arena_.take(weights->size() + size_t(d.out_features));
    if (!copy) return fail("weight arena exhausted (classifier)");
    std::memcpy(copy, weights->data(), weights->size() * sizeof(float));
    d.weights = FloatSpan{copy, weights->size()};
    float* bias = copy + weights->size();
    for (size_t i = 0; i < size_t(d.out_features); ++i) bias[i] = c->bias() ? c->bias()->Get(i) : 0.0f;
    d.bias = FloatSpan{bias, size_t(d.out_features)};
    bytes_.release_range(weights->data(), weights->size() * sizeof(float));
    folded_bytes_ += (d.weights.size() + d.bias.size()) * sizeof(float);
    parameter_count_ += d.weights.size() + d.bias.size();
    head_.push_back(std::move(d));
    return Status::Ok();
  }

  // One of the user's Dense layers, read in place: [out][in] is the layout
  // the head runs on, and the writer aligns float vectors.
  Status read_dense(const fb::DenseLayer* src) {
    DenseLayer d;
    d.name = src->name()->str();
    const std::string where = "dense layer '" + d.name + "'";
    if (d.name.empty() || find_dense(d.name) >= 0 || find_layer(d.name) >= 0 || find_block(d.name) >= 0)
      return fail(where + ": empty or duplicate layer name");
    d.in_features = src->in_features();
    d.out_features = src->out_features();
    const int expected_in = head_.empty() ? feature_dim() : head_.back().out_features;
    if (d.in_features != expected_in)
      return fail(where + " takes " + std::to_string(d.in_features) + " inputs, the layer before gives " +
                  std::to_string(expected_in));
    if (d.out_features < 1 || d.out_features > (1 << 20))
      return fail(where + ": " + std::to_string(d.out_features) + " outputs out of range");
    const auto* w = src->weights();
    if (d.in_features < 1 ||
        uint64_t(w->size()) != detail::wide_product(uint64_t(d.in_features), uint64_t(d.out_features)))
      return fail(where + ": weights have " + std::to_string(w->size()) + " values, shape needs " +
                  std::to_string(d.out_features) + " x " + std::to_string(d.in_features));
    if (src->bias() && src->bias()->size() != size_t(d.out_features))
      return fail(where + ": bias has " + std::to_string(src->bias()->size()) + " values, expected " +
                  std::to_string(d.out_features));
    switch (src->activation()) {
      case fb::DenseActivation::LINEAR: d.activation = DenseActivation::linear; break;
      case fb::DenseActivation::RELU: d.activation = DenseActivation::relu; break;
      case fb::DenseActivation::RELU6: d.activation = DenseActivation::relu6; break;
      case fb::DenseActivation::SOFTMAX: d.activation = DenseActivation::softmax; break;
      default: return fail(where + ": unknown activation " + std::to_string(int(src->activation())));
    }
    if (reinterpret_cast<uintptr_t>(w->data()) % alignof(float) != 0)
      return fail(where + ": weights are not aligned");
    for (const auto* v : {w, src->bias()})
      if (v)
        for (float x : *v)
          if (!std::isfinite(x)) return fail(where + ": non-finite weight");
    d.weights = FloatSpan{w->data(), w->size()};
    if (src->bias()) d.bias = FloatSpan{src->bias()->data(), src->bias()->size()};
    parameter_count_ += d.weights.size() + d.bias.size();
    head_.push_back(std::move(d));
    return Status::Ok();
  }

  ByteSource bytes_;
  WeightArena weight_arena_;  // every folded weight and the classifier
  std::string name_, source_, source_format_, exporter_version_;
  float input_scale_ = 1.0f, input_offset_ = 0.0f, width_multiplier_ = 1.0f;
  int resolution_ = 224;
  std::vector<ConvLayer> layers_;
  std::vector<BlockInfo> blocks_;
  std::vector<DenseLayer> head_;
  std::vector<std::string> labels_;
  int label_offset_ = 0;
  uint32_t format_version_ = 1;
  bool prepacked_ = false;
  size_t folded_bytes_ = 0, parameter_count_ = 0;
  uint32_t max_layers_ = FEATX_MAX_MODEL_LAYERS;
};

}  // namespace featx
