// featx/kernels/pointer_walk.hpp: step a pointer so the compiler keeps it.
//
// A fully unrolled kernel with a run-time stride (channels, row length)
// touches dozens of addresses: 40 input vectors, 16 outputs in the
// depthwise row pair. GCC precomputes each one into its own register,
// runs out of the 16 general registers and parks addresses on the stack
// and in vector registers; those reloads and moves took the depthwise
// kernel from ~44 to ~28 flops per cycle. Stepping one pointer behind an
// empty asm keeps a single running address: one add per step.
#pragma once

#include <cstddef>

namespace featx {

template <typename T>
inline void advance(T*& p, ptrdiff_t elements) {
  p += elements;
#if defined(__GNUC__)
  __asm__("" : "+r"(p));  // hides the value, so the adds are not folded back
#endif
}

}  // namespace featx
