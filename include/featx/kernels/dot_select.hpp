// featx/kernels/dot_select.hpp: the dot-product tile kernel for an ISA,
// chosen once per search (as kernel_set.hpp does for the network's kernels).
#pragma once

#include "featx/kernels/dot_ref.hpp"
#include "featx/kernels/isa.hpp"
#ifdef FEATX_HAVE_X86_SIMD
#include "featx/kernels/dot_avx2.hpp"
#include "featx/kernels/dot_avx512.hpp"
#endif
#ifdef FEATX_HAVE_NEON
#include "featx/kernels/dot_neon.hpp"
#endif

namespace featx {

struct DotKernel {
  Isa isa = Isa::scalar;
  DotTileKernel tile = dot_tile_ref;
};

// The kernel for `isa`, or the scalar one when this machine lacks it.
inline DotKernel dot_kernel(Isa isa) {
  if (!isa_supported(isa)) return DotKernel{};
#ifdef FEATX_HAVE_X86_SIMD
  if (isa == Isa::avx512) return DotKernel{isa, avx512::dot_tile};
  if (isa == Isa::avx2) return DotKernel{isa, avx2::dot_tile};
#endif
#ifdef FEATX_HAVE_NEON
  if (isa == Isa::neon) return DotKernel{isa, neon::dot_tile};
#endif
  return DotKernel{};
}

}  // namespace featx
