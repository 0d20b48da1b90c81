// featx/kernels/packed_weights.hpp: the layout the GEMM kernels read weights
// in, made once at model load.
//
// A [rows][cols] weight matrix (a 1x1 conv's [in][out], or a full conv's
// [kh*kw*in][out]) is cut into panels of kPanelWidth = 16 columns; each
// panel is stored K-major, so a micro-kernel reads one panel as a single
// contiguous, 64-byte aligned stream of rows (one cache line per row)
// instead of striding through the whole matrix. The last panel is padded
// with zero columns, so kernels never need masked weight loads. 16 columns
// is one AVX-512 vector, two AVX2 vectors, four NEON vectors: one layout
// serves every ISA, and the scalar references read it too.
#pragma once

#include <cstddef>
#include <vector>

#include "featx/detail/allocator_hooks.hpp"

namespace featx {

constexpr int kPanelWidth = 16;

// std::allocator with 64-byte alignment (a cache line, an AVX-512 vector),
// through FEATX_ALIGNED_ALLOC / FEATX_FREE. Out of memory it throws
// std::bad_alloc, or aborts with a message when exceptions are off.
template <typename T>
struct CacheAlignedAllocator {
  using value_type = T;
  static constexpr std::size_t kAlign = 64;
  CacheAlignedAllocator() = default;
  template <typename U>
  CacheAlignedAllocator(const CacheAlignedAllocator<U>&) {}
  T* allocate(std::size_t n) {
    if (n > (std::size_t(-1) - kAlign) / sizeof(T)) detail::allocation_failed(std::size_t(-1));
    const std::size_t bytes = (n * sizeof(T) + kAlign - 1) / kAlign * kAlign;
    void* p = FEATX_ALIGNED_ALLOC(kAlign, bytes == 0 ? kAlign : bytes);
    if (!p) detail::allocation_failed(bytes);
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) { FEATX_FREE(p); }
  template <typename U>
  bool operator==(const CacheAlignedAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const CacheAlignedAllocator<U>&) const { return false; }
};

using AlignedFloats = std::vector<float, CacheAlignedAllocator<float>>;

inline size_t padded_columns(int cols) {
  return (size_t(cols) + kPanelWidth - 1) / kPanelWidth * kPanelWidth;
}

// Floats a packed [rows][cols] matrix occupies.
inline size_t packed_floats(int rows, int cols) { return size_t(rows) * padded_columns(cols); }

// Where element (row, col) of the logical matrix lives in the packed one.
inline size_t packed_index(int rows, int row, int col) {
  return (size_t(col / kPanelWidth) * size_t(rows) + size_t(row)) * kPanelWidth +
         size_t(col % kPanelWidth);
}

// The panel that holds column `col` (a multiple of kPanelWidth).
inline const float* packed_panel(const float* packed, int rows, int col) {
  return packed + size_t(col / kPanelWidth) * size_t(rows) * kPanelWidth;
}

// Packs a row-major [rows][cols] matrix.
inline AlignedFloats pack_weights(const float* matrix, int rows, int cols) {
  AlignedFloats packed(packed_floats(rows, cols), 0.0f);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) packed[packed_index(rows, r, c)] = matrix[size_t(r) * size_t(cols) + size_t(c)];
  return packed;
}

}  // namespace featx
