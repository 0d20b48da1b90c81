// featx/detail/checked_size.hpp: sizes that must not wrap.
//
// Element and byte counts built from a model file's shapes or a caller's
// input size are products of numbers featx accepts (65536 channels, 16384
// pixels a side, batches of 2^20): they fit a 64-bit size_t but wrap a
// 32-bit one (armv7) long before those limits; a file's header (an .npy
// shape, an index's row count) can state numbers that wrap any size_t.
// Such counts are computed with a SizeCheck, which remembers any overflow;
// the caller refuses the file, the plan or the call when it is set, instead
// of allocating a wrapped size. docs/RELIABILITY.md lists where.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

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
  // A 64-bit count from a file or a caller (an .npy dimension, a header
  // field) as a size_t: past SIZE_MAX (a 32-bit target) is an overflow.
  size_t fit(uint64_t v) {
    if (v > uint64_t(SIZE_MAX)) {
      overflow = true;
      return 0;
    }
    return size_t(v);
  }
  // The element count of a shape (1 for none); a negative dimension is an
  // overflow too.
  size_t product(const std::vector<int64_t>& shape) {
    size_t n = 1;
    for (int64_t d : shape) {
      if (d < 0) overflow = true;
      n = mul(n, d < 0 ? 0 : fit(uint64_t(d)));
    }
    return n;
  }
};

// A count that may not fit size_t, in 64 bits: for comparing a shape with a
// file's vector size and for messages. Callers bound the factors (channels,
// pixels, classes) so that the product fits 64 bits.
inline uint64_t wide_product(uint64_t a, uint64_t b, uint64_t c = 1) { return a * b * c; }

}  // namespace detail
}  // namespace featx
