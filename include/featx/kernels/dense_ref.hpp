// featx/kernels/dense_ref.hpp: fully connected layer (the classifier head),
// scalar reference. weights [outputs][inputs], accumulates in double.
#pragma once

#include <cstddef>

namespace featx {

inline void dense_ref(const float* input, int inputs, const float* weights, const float* bias,
                      int outputs, float* output) {
  for (int o = 0; o < outputs; ++o) {
    const float* w = weights + size_t(o) * size_t(inputs);
    double acc = bias ? double(bias[o]) : 0.0;
    for (int i = 0; i < inputs; ++i) acc += double(input[i]) * double(w[i]);
    output[o] = float(acc);
  }
}

}  // namespace featx
