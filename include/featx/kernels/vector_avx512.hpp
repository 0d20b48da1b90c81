// featx/kernels/vector_avx512.hpp: the AVX-512 helpers the kernels share:
// the lane mask of a channel tail, loads and stores of a channel block,
// and the fused activation.
#pragma once

#include "featx/kernels/activation.hpp"
#include "featx/kernels/isa.hpp"

#ifdef FEATX_HAVE_X86_SIMD

namespace featx {
namespace avx512 {

FEATX_TARGET_AVX512 inline __mmask16 tail_mask(int n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1u);
}

// A whole 16-channel block (kTail false) loads and stores without a mask:
// a masked load cannot fold into an FMA and costs more; only the channel
// tail masks.
template <bool kTail>
FEATX_TARGET_AVX512 __attribute__((always_inline)) inline __m512 load_block(const float* p,
                                                                            __mmask16 mask) {
  return kTail ? _mm512_maskz_loadu_ps(mask, p) : _mm512_loadu_ps(p);
}
template <bool kTail>
FEATX_TARGET_AVX512 __attribute__((always_inline)) inline void store_block(float* p, __mmask16 mask,
                                                                           __m512 v) {
  if (kTail) _mm512_mask_storeu_ps(p, mask, v);
  else _mm512_storeu_ps(p, v);
}

FEATX_TARGET_AVX512 inline __m512 activate(__m512 v, Activation act) {
  if (act == Activation::none) return v;
  v = _mm512_max_ps(v, _mm512_setzero_ps());
  if (act == Activation::relu6) v = _mm512_min_ps(v, _mm512_set1_ps(6.0f));
  return v;
}

}  // namespace avx512
}  // namespace featx

#endif  // FEATX_HAVE_X86_SIMD
