// featx/kernels/conv_neon.hpp: full KxK convolution (the 3x3 stride-2 stem),
// NEON (AArch64 and 32-bit ARM): the walk of conv_tiled.hpp with every
// pixel through the im2col patch path and the register tile of
// pointwise_neon (no direct tile yet: NEON speed is not measured on
// hardware here).
#pragma once

#include "featx/kernels/conv_ref.hpp"
#include "featx/kernels/conv_tiled.hpp"
#include "featx/kernels/pointwise_neon.hpp"

#ifdef FEATX_HAVE_NEON

namespace featx {
namespace neon {

inline void conv2d(const ConvGeometry& g, const float* input, const float* weights,
                   const float* bias, Activation act, float* output, int row_begin, int row_end) {
  conv2d_tiled<kPointwiseMR, kPointwiseNR>(g, input, weights, bias, act, output, row_begin,
                                           row_end, pointwise_rows, nullptr);
}

}  // namespace neon
}  // namespace featx

#endif  // FEATX_HAVE_NEON
