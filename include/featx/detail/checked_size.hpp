// featx/detail/checked_size.hpp: sizes that must not wrap.
//
// Element and byte counts built from a model file's shapes or a caller's
// input size are products of numbers featx accepts (65536 channels, 16384
// pixels a side, batches of 2^20): they fit a 64-bit size_t but wrap a
// 32-bit one (armv7) long before those limits. Such counts are computed
// with a SizeCheck, which remembers any overflow; the caller refuses the
// model or the plan when it is set, instead of allocating a wrapped size.
#pragma once

#include <cstddef>
#include <cstdint>

namespace featx {
namespace detail {

struct SizeCheck {
  bool overflow = false;

  size_t mul(size_t a, size_t b) {
    if (a != 0 && b > SIZE_MAX / a) {
      overflow = true;
      return 0;
    }
    return a * b;
  }
  size_t mul(size_t a, size_t b, size_t c) { return mul(mul(a, b), c); }
  size_t add(size_t a, size_t b) {
    if (b > SIZE_MAX - a) {
      overflow = true;
      return 0;
    }
    return a + b;
  }
  // Rounded up to a multiple of `to` (a power of two).
  size_t round_up(size_t a, size_t to) { return add(a, to - 1) / to * to; }
};

// A count that may not fit size_t, in 64 bits: for comparing a shape with a
// file's vector size and for messages. Callers bound the factors (channels,
// pixels, classes) so that the product fits 64 bits.
inline uint64_t wide_product(uint64_t a, uint64_t b, uint64_t c = 1) { return a * b * c; }

}  // namespace detail
}  // namespace featx
