// featx/head.hpp: the user's Dense layers after global average pooling.
//
// A model trained on top of the features (Sequential([KerasLayer, Dense,
// Dense]), a Teachable Machine export, a .tflite's FULLY_CONNECTED ops)
// carries them in the file's dense_head; a classification .tflite's ImageNet
// logits layer is loaded as a one-layer linear head named "Logits". They run
// on the pooled feature vector, one image at a time, with the scalar
// reference (double accumulation, rounded once per output): a few hundred
// thousand multiply-adds, next to 300 M in the network, and identical on
// every ISA and thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "featx/kernels/dense_ref.hpp"
#include "featx/weight_arena.hpp"

namespace featx {

enum class DenseActivation { linear, relu, relu6, softmax };

inline const char* dense_activation_name(DenseActivation a) {
  switch (a) {
    case DenseActivation::relu: return "relu";
    case DenseActivation::relu6: return "relu6";
    case DenseActivation::softmax: return "softmax";
    default: return "linear";
  }
}

struct DenseLayer {
  std::string name;  // the user's layer name ("dense", "embedding_layer", "Logits")
  int in_features = 0, out_features = 0;
  DenseActivation activation = DenseActivation::linear;
  FloatSpan weights;  // [out_features][in_features], read in place from the file
  FloatSpan bias;     // [out_features], or empty when the layer has none
};

namespace head_detail {

// Softmax as tf.nn.softmax computes it (subtract the max, exponentiate,
// normalise), in double and rounded once, so the probabilities are within
// float rounding of TF's. The exponentials are computed twice rather than
// stored, so the head needs no buffer of its own.
inline void softmax(float* v, int n) {
  double top = v[0];
  for (int i = 1; i < n; ++i) top = std::fmax(top, double(v[i]));
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += std::exp(double(v[i]) - top);
  for (int i = 0; i < n; ++i) v[i] = float(std::exp(double(v[i]) - top) / sum);
}

inline void activate(DenseActivation a, float* v, int n) {
  switch (a) {
    case DenseActivation::relu:
      for (int i = 0; i < n; ++i) v[i] = v[i] > 0.0f ? v[i] : 0.0f;
      break;
    case DenseActivation::relu6:
      for (int i = 0; i < n; ++i) v[i] = v[i] > 0.0f ? (v[i] < 6.0f ? v[i] : 6.0f) : 0.0f;
      break;
    case DenseActivation::softmax: softmax(v, n); break;
    default: break;
  }
}

}  // namespace head_detail

// Floats of scratch run_dense_head needs: two vectors of the widest layer.
inline size_t dense_head_scratch_floats(const std::vector<DenseLayer>& head) {
  size_t widest = 0;
  for (const DenseLayer& d : head) widest = std::max(widest, size_t(d.out_features));
  return 2 * widest;
}

// Runs head[0..last] on one feature vector into `out` (head[last].out_features
// floats). `activate_last` false stops before the last layer's activation
// (its logits). `scratch`: dense_head_scratch_floats(head) floats.
inline void run_dense_head(const std::vector<DenseLayer>& head, size_t last, bool activate_last,
                           const float* features, float* scratch, float* out) {
  const float* in = features;
  const size_t half = dense_head_scratch_floats(head) / 2;
  for (size_t i = 0; i <= last; ++i) {
    const DenseLayer& d = head[i];
    float* dst = i == last ? out : scratch + (i % 2) * half;
    dense_ref(in, d.in_features, d.weights.data(), d.bias.size() ? d.bias.data() : nullptr,
              d.out_features, dst);
    if (i != last || activate_last) head_detail::activate(d.activation, dst, d.out_features);
    in = dst;
  }
}

}  // namespace featx
