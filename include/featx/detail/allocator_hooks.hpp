// featx/detail/allocator_hooks.hpp: where featx's own raw memory comes from.
//
// featx allocates raw memory in four places: the 64-byte aligned buffers of
// CacheAlignedAllocator (a plan's chunk weights), a model's bytes when they
// are copied (Model::from_memory, or a file read where there is no mmap),
// where there is no mmap the model's weight arena, and decoded pixels
// (libjpeg's output rows, a 16-bit PNG's bytes: allocate_bytes below). All go through these
// hooks, so an embedder can route them to its own allocator. Define them
// before including any featx header, and the same way in every translation
// unit (they change inline functions: differing definitions break the ODR):
//
//   FEATX_ALIGNED_ALLOC(alignment, bytes)  default std::aligned_alloc; bytes is
//                                          a non-zero multiple of alignment (64)
//   FEATX_FREE(ptr)                        default std::free; releases what any
//                                          hook returned, so define it with
//                                          FEATX_ALIGNED_ALLOC (both or neither)
//   FEATX_MALLOC(bytes), FEATX_REALLOC(ptr, bytes)
//                                          optional, together; they and
//                                          FEATX_FREE become stb_image's
//                                          STBI_MALLOC/STBI_REALLOC/STBI_FREE
//
// Not covered: std::vector / std::string (operator new: replace it globally
// if you need to), libjpeg's own allocations (FEATX_WITH_LIBJPEG), and the
// mmap paths (model files, the weight
// arena on Linux). run() allocates nothing at all.
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <new>

// FEATX_FREE releases what every hook returns: the pairs come together.
#if defined(FEATX_ALIGNED_ALLOC) != defined(FEATX_FREE)
#error "featx: define FEATX_ALIGNED_ALLOC and FEATX_FREE together"
#endif
#if defined(FEATX_MALLOC) != defined(FEATX_REALLOC) || (defined(FEATX_MALLOC) && !defined(FEATX_FREE))
#error "featx: FEATX_MALLOC needs FEATX_REALLOC, FEATX_ALIGNED_ALLOC and FEATX_FREE too"
#endif

#ifndef FEATX_ALIGNED_ALLOC
#define FEATX_ALIGNED_ALLOC(alignment, bytes) std::aligned_alloc((alignment), (bytes))
#endif
#ifndef FEATX_FREE
#define FEATX_FREE(ptr) std::free(ptr)
#endif

namespace featx {
namespace detail {

// An allocation a std::allocator must not return from failed: throws
// std::bad_alloc as std::allocator does; without exceptions (-fno-exceptions)
// it prints one line and aborts, as libstdc++'s containers do then.
[[noreturn]] inline void allocation_failed(std::size_t bytes) {
#if defined(__cpp_exceptions)
  (void)bytes;
  throw std::bad_alloc();
#else
  std::fprintf(stderr, "featx: out of memory allocating %zu bytes\n", bytes);
  std::abort();
#endif
}

// `bytes` (rounded up to whole cache lines) through FEATX_ALIGNED_ALLOC, or
// null; release with free_bytes, which fits a deleter's signature.
inline void* allocate_bytes(std::size_t bytes, std::size_t alignment = 64) {
  if (bytes > std::size_t(-1) - alignment) return nullptr;
  const std::size_t rounded = bytes == 0 ? alignment : (bytes + alignment - 1) / alignment * alignment;
  return FEATX_ALIGNED_ALLOC(alignment, rounded);
}
inline void free_bytes(void* p) { FEATX_FREE(p); }

}  // namespace detail
}  // namespace featx
