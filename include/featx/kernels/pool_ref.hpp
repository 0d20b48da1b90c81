// featx/kernels/pool_ref.hpp: global average and max pooling over H and W,
// scalar reference. input [pixels][channels] -> output [channels].
// The average sums in double and divides once, so it does not depend on
// how pixels are ordered or split.
#pragma once

#include <cstddef>

namespace featx {

inline void global_avg_pool_ref(const float* input, size_t pixels, int channels, float* output) {
  constexpr int kChunk = 64;
  double acc[kChunk];
  for (int c0 = 0; c0 < channels; c0 += kChunk) {
    const int n = channels - c0 < kChunk ? channels - c0 : kChunk;
    for (int j = 0; j < n; ++j) acc[j] = 0.0;
    for (size_t p = 0; p < pixels; ++p) {
      const float* in = input + p * size_t(channels) + c0;
      for (int j = 0; j < n; ++j) acc[j] += in[j];
    }
    for (int j = 0; j < n; ++j) output[c0 + j] = float(acc[j] / double(pixels));
  }
}

inline void global_max_pool_ref(const float* input, size_t pixels, int channels, float* output) {
  for (int c = 0; c < channels; ++c) output[c] = input[c];
  for (size_t p = 1; p < pixels; ++p) {
    const float* in = input + p * size_t(channels);
    for (int c = 0; c < channels; ++c)
      if (in[c] > output[c]) output[c] = in[c];
  }
}

}  // namespace featx
