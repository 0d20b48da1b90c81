// featx/kernels/kernel_set.hpp: one function table per instruction set, so
// the extractor picks kernels once and never branches on the ISA per layer.
#pragma once

#include <string>

#include "featx/kernels/conv_ref.hpp"
#include "featx/kernels/depthwise_ref.hpp"
#include "featx/kernels/isa.hpp"
#include "featx/kernels/pointwise_ref.hpp"
#include "featx/kernels/pool_ref.hpp"
#ifdef FEATX_HAVE_X86_SIMD
#include "featx/kernels/conv_avx2.hpp"
#include "featx/kernels/conv_avx512.hpp"
#include "featx/kernels/depthwise_avx2.hpp"
#include "featx/kernels/depthwise_avx512.hpp"
#include "featx/kernels/pointwise_avx2.hpp"
#include "featx/kernels/pointwise_avx512.hpp"
#include "featx/kernels/pool_avx2.hpp"
#include "featx/kernels/pool_avx512.hpp"
#endif
#ifdef FEATX_HAVE_NEON
#include "featx/kernels/conv_neon.hpp"
#include "featx/kernels/depthwise_neon.hpp"
#include "featx/kernels/pointwise_neon.hpp"
#include "featx/kernels/pool_neon.hpp"
#endif

namespace featx {

// Full conv weights packed as a [kh*kw*in][out] matrix; depthwise [kh][kw][c].
using ConvKernel = void (*)(const ConvGeometry&, const float* input, const float* weights,
                            const float* bias, Activation, float* output, int row_begin,
                            int row_end);
// weights: packed (packed_weights.hpp); n_begin a multiple of kPanelWidth.
// bias null: each output starts from the value already in `output` instead
// of its bias, so a K split into chunks (weights packed per chunk) continues
// the same chain: bias and activation with the first / last chunk only give
// the unsplit result, bit for bit on the float ISAs.
using PointwiseKernel = void (*)(const float* input, size_t pixel_begin, size_t pixel_end,
                                 int in_c, const float* weights, const float* bias, int out_c,
                                 Activation, const float* residual, float* output,
                                 int n_begin, int n_end);

// input [pixels][channels] -> output [channels].
using PoolKernel = void (*)(const float* input, size_t pixels, int channels, float* output);

struct KernelSet {
  Isa isa = Isa::scalar;
  ConvKernel conv2d = conv2d_ref;
  ConvKernel depthwise = depthwise_ref;
  PointwiseKernel pointwise = pointwise_ref;
  PoolKernel avg_pool = global_avg_pool_ref;
  PoolKernel max_pool = global_max_pool_ref;
};

// The kernels for `isa`, or the scalar references when it is not available.
inline KernelSet kernel_set(Isa isa) {
  KernelSet k;
  if (!isa_supported(isa)) return k;
#ifdef FEATX_HAVE_X86_SIMD
  if (isa == Isa::avx512) return KernelSet{isa, avx512::conv2d, avx512::depthwise, avx512::pointwise,
                                          avx512::global_avg_pool, avx512::global_max_pool};
  if (isa == Isa::avx2) return KernelSet{isa, avx2::conv2d, avx2::depthwise, avx2::pointwise,
                                        avx2::global_avg_pool, avx2::global_max_pool};
#endif
#ifdef FEATX_HAVE_NEON
  if (isa == Isa::neon) return KernelSet{isa, neon::conv2d, neon::depthwise, neon::pointwise,
                                        neon::global_avg_pool, neon::global_max_pool};
#endif
  return k;
}

// The 1x1 conv's register tile on `isa`, for `featx inspect`: pixels x
// output channels per call of the innermost kernel.
namespace detail {
inline std::string tile_text(int mr, int nr, const char* what) {
  return "1x1 conv " + std::to_string(mr) + " pixels x " + std::to_string(nr) + " channels (" + what + ")";
}
}  // namespace detail

inline std::string pointwise_tile_description(Isa isa) {
#ifdef FEATX_HAVE_X86_SIMD
  if (isa == Isa::avx512)
    return detail::tile_text(avx512::kPointwiseMR, avx512::kPointwiseNR, "24 of 32 zmm accumulators") +
           "; 8- and 24-channel tiles in pixel pairs (two pixels' channels packed in n/8 zmm, 6 pairs)"
           "; expands with K = 8, 16, 24 weight-stationary (a panel's K weight vectors held, pixels streamed)";
  if (isa == Isa::avx2) return detail::tile_text(avx2::kPointwiseMR, avx2::kPointwiseNR, "12 of 16 ymm accumulators");
#endif
#ifdef FEATX_HAVE_NEON
  if (isa == Isa::neon) return detail::tile_text(neon::kPointwiseMR, neon::kPointwiseNR, "q-register accumulators");
#endif
  (void)isa;
  return "scalar reference loops (double accumulation)";
}

}  // namespace featx
