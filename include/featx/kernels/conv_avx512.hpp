// featx/kernels/conv_avx512.hpp: full KxK convolution (the 3x3 stride-2 stem),
// AVX-512, as im2col tiles fed to the pointwise micro-kernel.
//
// Weights [kh][kw][in][out] are already a [kh*kw*in][out] matrix (packed in
// panels like a 1x1 conv's), so eight output pixels at a time are gathered
// into a small patch matrix on the stack (zeros for padding; adding 0 * w
// leaves a float sum unchanged) and multiplied by the 8x32 register tile of
// pointwise_avx512.
#pragma once

#include "featx/kernels/conv_ref.hpp"
#include "featx/kernels/im2col.hpp"
#include "featx/kernels/pointwise_avx512.hpp"

#ifdef FEATX_HAVE_X86_SIMD

namespace featx {
namespace avx512 {

FEATX_TARGET_AVX512 inline void conv2d(const ConvGeometry& g, const float* input,
                                       const float* weights, const float* bias, Activation act,
                                       float* output, int row_begin, int row_end) {
  constexpr int kMR = kPointwiseMR, kNR = kPointwiseNR;
  const int depth = g.kernel_h * g.kernel_w * g.in_c;
  if (depth > kIm2colMaxDepth) {  // not MobileNetV2's stem: use the reference
    conv2d_ref(g, input, weights, bias, act, output, row_begin, row_end);
    return;
  }
  alignas(64) float patches[kMR * kIm2colMaxDepth];
  for (int oy = row_begin; oy < row_end; ++oy) {
    for (int ox0 = 0; ox0 < g.out_w; ox0 += kMR) {
      const int m = g.out_w - ox0 < kMR ? g.out_w - ox0 : kMR;
      im2col_pixels(g, input, oy, ox0, m, patches);
      float* out = output + (size_t(oy) * g.out_w + ox0) * g.out_c;
      for (int n0 = 0; n0 < g.out_c; n0 += kNR) {
        const int n = g.out_c - n0 < kNR ? g.out_c - n0 : kNR;
        pointwise_rows(m, patches, depth, packed_panel(weights, depth, n0), g.out_c, bias + n0,
                       act, nullptr, out + n0, n);
      }
    }
  }
}

}  // namespace avx512
}  // namespace featx

#endif  // FEATX_HAVE_X86_SIMD
