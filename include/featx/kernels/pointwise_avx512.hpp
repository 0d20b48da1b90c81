// featx/kernels/pointwise_avx512.hpp: 1x1 convolution, AVX-512, 8 pixels x 32
// channels per register tile.
//
// Same contract as pointwise_ref (input [pixels][in_c], weights [in_c][out_c],
// fused bias, activation, optional residual). Row k of a 32-wide column panel
// is 32 contiguous floats of the folded weights, so the kernel streams them
// in place (no repacking copy). Channel tails use masked loads and stores.
// Each output is one FMA chain over k in order: deterministic, independent
// of how pixels are split between threads.
#pragma once

#include <cstddef>

#include "featx/kernels/activation.hpp"
#include "featx/kernels/isa.hpp"

#ifdef FEATX_HAVE_X86_SIMD

// GCC 12 warns inside its own _mm512_maskz_loadu_ps (an intentionally
// undefined pass-through operand); the warning is about the header, not us.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

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

template <int MR>
FEATX_TARGET_AVX512 inline void pointwise_tile(const float* input, int in_c, const float* weights,
                                               int out_c, const float* bias, Activation act,
                                               const float* residual, float* output, int n,
                                               __mmask16 m0, __mmask16 m1) {
  __m512 acc0[MR], acc1[MR];
  const __m512 b0 = _mm512_maskz_loadu_ps(m0, bias), b1 = _mm512_maskz_loadu_ps(m1, bias + 16);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc0[r] = b0, acc1[r] = b1;
  const float* w = weights;
  if (n > 16) {
    for (int k = 0; k < in_c; ++k, w += out_c) {
      const __m512 w0 = _mm512_maskz_loadu_ps(m0, w), w1 = _mm512_maskz_loadu_ps(m1, w + 16);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const __m512 a = _mm512_set1_ps(input[size_t(r) * in_c + k]);
        acc0[r] = _mm512_fmadd_ps(a, w0, acc0[r]);
        acc1[r] = _mm512_fmadd_ps(a, w1, acc1[r]);
      }
    }
  } else {
    for (int k = 0; k < in_c; ++k, w += out_c) {
      const __m512 w0 = _mm512_maskz_loadu_ps(m0, w);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r)
        acc0[r] = _mm512_fmadd_ps(_mm512_set1_ps(input[size_t(r) * in_c + k]), w0, acc0[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    __m512 v0 = acc0[r], v1 = acc1[r];
    if (residual) {
      v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, residual + size_t(r) * out_c));
      v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, residual + size_t(r) * out_c + 16));
    }
    _mm512_mask_storeu_ps(output + size_t(r) * out_c, m0, activate(v0, act));
    if (n > 16) _mm512_mask_storeu_ps(output + size_t(r) * out_c + 16, m1, activate(v1, act));
  }
}

FEATX_TARGET_AVX512 inline void pointwise(const float* input, size_t pixel_begin,
                                          size_t pixel_end, int in_c, const float* weights,
                                          const float* bias, int out_c, Activation act,
                                          const float* residual, float* output, int n_begin,
                                          int n_end) {
  constexpr int kMR = 8, kNR = 32;
  // Column panels outer, pixel tiles inner: one panel of weights (in_c x 32
  // floats) is reused from L1/L2 by every pixel tile instead of streaming
  // all weights once per tile (the 1x1 convs of the last blocks have 1-2 MB).
  for (int n0 = n_begin; n0 < n_end; n0 += kNR) {
    const int n = n_end - n0 < kNR ? n_end - n0 : kNR;
    const __mmask16 m0 = tail_mask(n), m1 = tail_mask(n - 16);
    const float* w = weights + n0;
    for (size_t p = pixel_begin; p < pixel_end; p += kMR) {
      const int m = pixel_end - p < size_t(kMR) ? int(pixel_end - p) : kMR;
      const float* in = input + p * size_t(in_c);
      float* out = output + p * size_t(out_c);
      const float* r = residual ? residual + p * size_t(out_c) + n0 : nullptr;
      switch (m) {
        case 8: pointwise_tile<8>(in, in_c, w, out_c, bias + n0, act, r, out + n0, n, m0, m1); break;
        case 7: pointwise_tile<7>(in, in_c, w, out_c, bias + n0, act, r, out + n0, n, m0, m1); break;
        case 6: pointwise_tile<6>(in, in_c, w, out_c, bias + n0, act, r, out + n0, n, m0, m1); break;
        case 5: pointwise_tile<5>(in, in_c, w, out_c, bias + n0, act, r, out + n0, n, m0, m1); break;
        case 4: pointwise_tile<4>(in, in_c, w, out_c, bias + n0, act, r, out + n0, n, m0, m1); break;
        case 3: pointwise_tile<3>(in, in_c, w, out_c, bias + n0, act, r, out + n0, n, m0, m1); break;
        case 2: pointwise_tile<2>(in, in_c, w, out_c, bias + n0, act, r, out + n0, n, m0, m1); break;
        default: pointwise_tile<1>(in, in_c, w, out_c, bias + n0, act, r, out + n0, n, m0, m1); break;
      }
    }
  }
}

}  // namespace avx512
}  // namespace featx

#pragma GCC diagnostic pop

#endif  // FEATX_HAVE_X86_SIMD
