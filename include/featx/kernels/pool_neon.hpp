// featx/kernels/pool_neon.hpp: global average and max pooling, NEON, 4
// channels per step, the last channels % 4 in scalar code. Same arithmetic
// as pool_avx512: the average sums widened doubles in pixel order
// (bit-identical to global_avg_pool_ref; on 32-bit ARM, which has no
// float64 vectors, it is global_avg_pool_ref), the max is
// `in > acc ? in : acc` (on 32-bit ARM the compare flushes subnormals to
// zero: vector_neon.hpp).
#pragma once

#include <cstddef>

#include "featx/kernels/isa.hpp"
#include "featx/kernels/pool_ref.hpp"

#ifdef FEATX_HAVE_NEON

namespace featx {
namespace neon {

inline void global_avg_pool(const float* input, size_t pixels, int channels, float* output) {
#ifndef __aarch64__
  // 32-bit ARM has no float64 vectors: the reference's double sums.
  global_avg_pool_ref(input, pixels, channels, output);
#else
  const float64x2_t count = vdupq_n_f64(double(pixels));
  int c0 = 0;
  for (; c0 + 4 <= channels; c0 += 4) {
    float64x2_t lo = vdupq_n_f64(0.0), hi = vdupq_n_f64(0.0);
    for (size_t p = 0; p < pixels; ++p) {
      const float32x4_t v = vld1q_f32(input + p * size_t(channels) + c0);
      lo = vaddq_f64(lo, vcvt_f64_f32(vget_low_f32(v)));
      hi = vaddq_f64(hi, vcvt_high_f64_f32(v));
    }
    const float32x2_t mean_lo = vcvt_f32_f64(vdivq_f64(lo, count));
    vst1q_f32(output + c0, vcvt_high_f32_f64(mean_lo, vdivq_f64(hi, count)));
  }
  for (; c0 < channels; ++c0) {
    double acc = 0.0;
    for (size_t p = 0; p < pixels; ++p) acc += input[p * size_t(channels) + c0];
    output[c0] = float(acc / double(pixels));
  }
#endif
}

inline void global_max_pool(const float* input, size_t pixels, int channels, float* output) {
  int c0 = 0;
  for (; c0 + 4 <= channels; c0 += 4) {
    float32x4_t acc = vld1q_f32(input + c0);
    for (size_t p = 1; p < pixels; ++p) {
      const float32x4_t v = vld1q_f32(input + p * size_t(channels) + c0);
      acc = vbslq_f32(vcgtq_f32(v, acc), v, acc);  // in > acc ? in : acc (NaN keeps acc)
    }
    vst1q_f32(output + c0, acc);
  }
  for (; c0 < channels; ++c0) {
    float acc = input[c0];
    for (size_t p = 1; p < pixels; ++p)
      if (input[p * size_t(channels) + c0] > acc) acc = input[p * size_t(channels) + c0];
    output[c0] = acc;
  }
}

}  // namespace neon
}  // namespace featx

#endif  // FEATX_HAVE_NEON
