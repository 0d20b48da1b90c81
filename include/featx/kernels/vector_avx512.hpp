// featx/kernels/vector_avx512.hpp: the two AVX-512 helpers every AVX-512
// kernel uses: the lane mask of a channel tail and the fused activation.
#pragma once

#include "featx/kernels/activation.hpp"
#include "featx/kernels/isa.hpp"

#ifdef FEATX_HAVE_X86_SIMD

namespace featx {
namespace avx512 {

FEATX_TARGET_AVX512 inline __mmask16 tail_mask(int n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1u);
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
