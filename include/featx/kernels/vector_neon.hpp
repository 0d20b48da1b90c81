// featx/kernels/vector_neon.hpp: the NEON helpers the kernels share: the
// fused activation, and the one AArch64-only intrinsic of the FMA chains
// spelled for 32-bit ARM too, so one set of kernels serves both.
//
// 32-bit ARM's NEON always flushes subnormal inputs and results to zero
// (it runs with the "standard FPSCR value"); its scalar VFP code, std::fma
// of the channel tails among it, does not. On AArch64 a tail's std::fma is
// bit-identical to a vector lane; on 32-bit ARM only when no value in the
// chain is subnormal (|x| < 2^-126), a difference of at most 2^-126 per term.
#pragma once

#include "featx/kernels/activation.hpp"
#include "featx/kernels/isa.hpp"

#ifdef FEATX_HAVE_NEON

namespace featx {
namespace neon {

// acc + b * s in every lane, one rounding each. A32 has no FMA by scalar
// (vfmaq_n_f32): broadcasting s first gives the same fused operation.
inline float32x4_t fma_by_scalar(float32x4_t acc, float32x4_t b, float s) {
#ifdef __aarch64__
  return vfmaq_n_f32(acc, b, s);
#else
  return vfmaq_f32(acc, b, vdupq_n_f32(s));
#endif
}

inline float32x4_t activate(float32x4_t v, Activation act) {
  if (act == Activation::none) return v;
  v = vmaxq_f32(v, vdupq_n_f32(0.0f));
  if (act == Activation::relu6) v = vminq_f32(v, vdupq_n_f32(6.0f));
  return v;
}

// Through the vector path so tail channels get exactly the lanes' semantics
// (FMAX/FMIN on NaN and signed zero).
inline float activate(float x, Activation act) {
  return vgetq_lane_f32(activate(vdupq_n_f32(x), act), 0);
}

}  // namespace neon
}  // namespace featx

#endif  // FEATX_HAVE_NEON
