// featx/mapped_file.hpp: read-only bytes of a file, memory-mapped where the
// platform allows (POSIX), read into memory otherwise. Mapping lets weights
// be used in place and keeps untouched pages out of the resident set.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "featx/detail/allocator_hooks.hpp"
#include "featx/status.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define FEATX_HAVE_MMAP 1
#endif

namespace featx {

// Owns a contiguous read-only byte range; movable, not copyable.
class ByteSource {
 public:
  ByteSource() = default;
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;
  ByteSource(ByteSource&& o) noexcept { swap(o); }
  ByteSource& operator=(ByteSource&& o) noexcept {
    ByteSource tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  ~ByteSource() { release(); }

  // Tells the OS the mapped pages wholly inside [p, p + n) are not needed
  // now: they leave the resident set and are read again from the file if
  // touched later. Used after folding copied the weights out.
  void release_range(const void* p, size_t n) const {
#ifdef FEATX_HAVE_MMAP
    if (!mapped_ || n == 0) return;
    const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
    const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
#else
    (void)p;
    (void)n;
#endif
  }

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool mapped() const { return mapped_; }

  // Borrows caller memory that must outlive this object (embedded arrays).
  static ByteSource borrow(const void* data, size_t size) {
    ByteSource s;
    s.data_ = static_cast<const uint8_t*>(data);
    s.size_ = size;
    return s;
  }

  // Copies caller memory into 64-byte aligned storage (FEATX_ALIGNED_ALLOC):
  // FlatBuffers needs 4, and a prepacked model's weights are used in place
  // from it, in 64-byte aligned panels (a cache line, an AVX-512 vector).
  static Status copy(const void* data, size_t size, const std::string& name, ByteSource* out) {
    constexpr size_t kAlign = 64;
    if (size > size_t(-1) - 2 * kAlign) return Status(StatusCode::internal, name + ": too large to copy");
    const size_t bytes = (size + kAlign) / kAlign * kAlign;  // non-zero, whole lines
    void* p = FEATX_ALIGNED_ALLOC(kAlign, bytes);
    if (!p)
      return Status(StatusCode::internal, name + ": out of memory copying " + std::to_string(size) + " bytes");
    if (size) std::memcpy(p, data, size);
    ByteSource s;
    s.owned_ = p;
    s.data_ = static_cast<const uint8_t*>(p);
    s.size_ = size;
    *out = std::move(s);
    return Status::Ok();
  }

  static Status open(const std::string& path, ByteSource* out) {
#ifdef FEATX_HAVE_MMAP
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      return err == ENOENT ? not_found(path + ": no such file")
                           : io_error(path + ": cannot open (" + std::strerror(err) + ")");
    }
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return io_error(path + ": not a regular file");
    }
    ByteSource s;
    s.size_ = static_cast<size_t>(st.st_size);
    if (s.size_ == 0) {
      ::close(fd);
      *out = std::move(s);
      return Status::Ok();
    }
    void* p = ::mmap(nullptr, s.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) return io_error(path + ": mmap failed (" + std::strerror(errno) + ")");
    s.data_ = static_cast<const uint8_t*>(p);
    s.mapped_ = true;
    *out = std::move(s);
    return Status::Ok();
#else
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return not_found(path + ": cannot open");
    std::vector<uint8_t> bytes;
    uint8_t buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
    bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) return io_error(path + ": read error");
    return copy(bytes.data(), bytes.size(), path, out);
#endif
  }

 private:
  void swap(ByteSource& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(mapped_, o.mapped_);
    std::swap(owned_, o.owned_);
  }
  void release() {
#ifdef FEATX_HAVE_MMAP
    if (mapped_ && data_) ::munmap(const_cast<uint8_t*>(data_), size_);
#endif
    if (owned_) FEATX_FREE(owned_);
    owned_ = nullptr;
    data_ = nullptr;
    size_ = 0;
    mapped_ = false;
  }

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  void* owned_ = nullptr;  // from copy(), released with FEATX_FREE
};

}  // namespace featx
