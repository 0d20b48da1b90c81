// featx/weight_arena.hpp: one block of memory for all of a model's weights.
//
// Why one block: MobileNetV2's 14 MB of folded weights in 50 separate
// allocations meant about 3500 first-touch page faults, a third of model
// load. One block is mapped 2 MiB-aligned and marked MADV_HUGEPAGE (backed
// by transparent huge pages where the system allows it: 7 faults instead of
// 3500), and each slice is populated in one MADV_POPULATE_WRITE call (Linux
// 5.14+) as it is taken. The fold writes every float of every slice right
// after, so this adds nothing to the resident set beyond rounding to a
// huge page. Elsewhere it is one aligned allocation (FEATX_ALIGNED_ALLOC).
//
// Layers view their slice through a FloatSpan; the arena lives in the Model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "featx/detail/allocator_hooks.hpp"
#include "featx/detail/checked_size.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define FEATX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FEATX_ASAN 1
#endif
#endif
#ifdef FEATX_ASAN
#include <sanitizer/asan_interface.h>
#endif

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#define FEATX_WEIGHT_ARENA_MMAP 1
#endif

namespace featx {

// A read-only view of floats owned elsewhere (a model's weight arena).
struct FloatSpan {
  const float* ptr = nullptr;
  size_t count = 0;
  const float* data() const { return ptr; }
  size_t size() const { return count; }
  bool empty() const { return count == 0; }
  const float* begin() const { return ptr; }
  const float* end() const { return ptr + count; }
  const float& operator[](size_t i) const { return ptr[i]; }
};

class WeightArena {
 public:
  // Slices start on 64-byte boundaries (a cache line, an AVX-512 vector).
  static constexpr size_t kSliceAlignFloats = 16;
#ifdef FEATX_ASAN
  // Under AddressSanitizer a poisoned gap follows every slice, so a kernel
  // reading past its layer's weights fails as it would on a heap buffer.
  static constexpr size_t kRedzoneFloats = 16;
#else
  static constexpr size_t kRedzoneFloats = 0;
#endif

  // Floats to reserve for a slice of `floats` (rounded up to the alignment);
  // `size` records a count that wraps.
  static size_t slice_floats(size_t floats, detail::SizeCheck& size) {
    return size.round_up(size.add(floats, kRedzoneFloats), kSliceAlignFloats);
  }

  WeightArena() = default;
  WeightArena(const WeightArena&) = delete;
  WeightArena& operator=(const WeightArena&) = delete;
  WeightArena(WeightArena&& o) noexcept { swap(o); }
  WeightArena& operator=(WeightArena&& o) noexcept {
    WeightArena tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  ~WeightArena() { release(); }

  // Allocates room for `floats` floats (the sum of slice_floats() of every
  // slice to come); false when the memory is not available.
  bool reserve(size_t floats) {
    release();
    if (floats == 0) return true;
    if (floats > (size_t(-1) >> 4)) return false;
    const size_t bytes = floats * sizeof(float);
#ifdef FEATX_WEIGHT_ARENA_MMAP
    const size_t page = size_t(::sysconf(_SC_PAGESIZE));
    const size_t huge = size_t(2) << 20;
    const size_t mapped_bytes = (bytes + page - 1) / page * page;
    // Over-map by one huge page, then trim to a 2 MiB-aligned start.
    void* raw = ::mmap(nullptr, mapped_bytes + huge, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return false;
    const uintptr_t start = (reinterpret_cast<uintptr_t>(raw) + huge - 1) / huge * huge;
    const size_t head = start - reinterpret_cast<uintptr_t>(raw);
    if (head) ::munmap(raw, head);
    const size_t tail = huge - head;
    if (tail) ::munmap(reinterpret_cast<void*>(start + mapped_bytes), tail);
    void* base = reinterpret_cast<void*>(start);
#ifdef MADV_HUGEPAGE
    (void)::madvise(base, mapped_bytes, MADV_HUGEPAGE);  // a hint; ignored when THP is off
#endif
    base_ = static_cast<float*>(base);
    mapped_bytes_ = mapped_bytes;
#else
    base_ = static_cast<float*>(FEATX_ALIGNED_ALLOC(64, (bytes + 63) / 64 * 64));
    if (!base_) return false;
#endif
    capacity_ = floats;
    used_ = 0;
    return true;
  }

  // The next slice of `floats` floats (uninitialised), or nullptr when the
  // reservation is exhausted.
  float* take(size_t floats) {
    detail::SizeCheck size;
    const size_t need = slice_floats(floats, size);
    if (size.overflow || need > capacity_ - used_) return nullptr;
    float* p = base_ + used_;
    used_ += need;
    populate(p, need);
#ifdef FEATX_ASAN
    ASAN_POISON_MEMORY_REGION(p + floats, (need - floats) * sizeof(float));
#endif
    return p;
  }

  size_t capacity_floats() const { return capacity_; }

 private:
  void swap(WeightArena& o) noexcept {
    std::swap(base_, o.base_);
    std::swap(capacity_, o.capacity_);
    std::swap(used_, o.used_);
    std::swap(mapped_bytes_, o.mapped_bytes_);
  }
  // Maps the pages of a slice about to be written in one call, not one
  // fault per 4 KiB page. Per slice rather than the whole arena up front:
  // the model's file pages leave the resident set as each layer is folded,
  // so populating all at once would double the peak.
  void populate(float* p, size_t floats) const {
#if defined(FEATX_WEIGHT_ARENA_MMAP) && defined(MADV_POPULATE_WRITE)
    static const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
    const uintptr_t end = (reinterpret_cast<uintptr_t>(p + floats)) / page * page;
    if (end > begin)  // EINVAL before Linux 5.14: the pages fault in lazily
      (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
#else
    (void)p;
    (void)floats;
#endif
  }

  void release() {
    if (base_) {
#ifdef FEATX_ASAN
      ASAN_UNPOISON_MEMORY_REGION(base_, capacity_ * sizeof(float));
#endif
#ifdef FEATX_WEIGHT_ARENA_MMAP
      ::munmap(base_, mapped_bytes_);
#else
      FEATX_FREE(base_);
#endif
    }
    base_ = nullptr;
    capacity_ = used_ = mapped_bytes_ = 0;
  }

  float* base_ = nullptr;
  size_t capacity_ = 0, used_ = 0, mapped_bytes_ = 0;
};

}  // namespace featx
