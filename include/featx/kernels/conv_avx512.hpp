// featx/kernels/conv_avx512.hpp: full KxK convolution (the 3x3 stride-2 stem),
// AVX-512, 4 output pixels x 16 channels per step, fused bias and activation.
//
// Weights [kh][kw][in][out] are used in place: row (ky, kx, ci) holds the
// out-channel vector. Taps accumulate in (ky, kx, ci) order from the bias,
// skipping padding, like conv2d_ref.
#pragma once

#include "featx/kernels/conv_ref.hpp"
#include "featx/kernels/pointwise_avx512.hpp"

#ifdef FEATX_HAVE_X86_SIMD

// GCC 12 warns inside its own _mm512_maskz_loadu_ps (an intentionally
// undefined pass-through operand); the warning is about the header, not us.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace featx {
namespace avx512 {

FEATX_TARGET_AVX512 inline void conv2d(const ConvGeometry& g, const float* input,
                                       const float* weights, const float* bias, Activation act,
                                       float* output, int row_begin, int row_end) {
  constexpr int kPixels = 4, kLanes = 16;
  for (int oy = row_begin; oy < row_end; ++oy) {
    const int iy0 = oy * g.stride - g.pad_top;
    for (int ox0 = 0; ox0 < g.out_w; ox0 += kPixels) {
      const int npx = g.out_w - ox0 < kPixels ? g.out_w - ox0 : kPixels;
      for (int n0 = 0; n0 < g.out_c; n0 += kLanes) {
        const __mmask16 mask = tail_mask(g.out_c - n0);
        const __m512 b = _mm512_maskz_loadu_ps(mask, bias + n0);
        __m512 acc[kPixels] = {b, b, b, b};
        for (int ky = 0; ky < g.kernel_h; ++ky) {
          const int iy = iy0 + ky;
          if (iy < 0 || iy >= g.in_h) continue;
          for (int kx = 0; kx < g.kernel_w; ++kx) {
            const float* wrow = weights + (size_t(ky) * g.kernel_w + kx) * g.in_c * g.out_c + n0;
            const float* in[kPixels];
#pragma GCC unroll 4
            for (int px = 0; px < kPixels; ++px) {
              const int ix = (ox0 + px) * g.stride - g.pad_left + kx;
              in[px] = (px < npx && ix >= 0 && ix < g.in_w)
                           ? input + (size_t(iy) * g.in_w + ix) * g.in_c
                           : nullptr;
            }
            for (int ci = 0; ci < g.in_c; ++ci) {
              const __m512 wv = _mm512_maskz_loadu_ps(mask, wrow + size_t(ci) * g.out_c);
#pragma GCC unroll 4
              for (int px = 0; px < kPixels; ++px)
                if (in[px]) acc[px] = _mm512_fmadd_ps(_mm512_set1_ps(in[px][ci]), wv, acc[px]);
            }
          }
        }
        for (int px = 0; px < npx; ++px)
          _mm512_mask_storeu_ps(output + (size_t(oy) * g.out_w + ox0 + px) * g.out_c + n0, mask,
                                activate(acc[px], act));
      }
    }
  }
}

}  // namespace avx512
}  // namespace featx

#pragma GCC diagnostic pop

#endif  // FEATX_HAVE_X86_SIMD
