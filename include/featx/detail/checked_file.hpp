// featx/detail/checked_file.hpp: the envelope of featx's small binary files.
//
// A .pca (pca.hpp) or .fxp (probe.hpp) file is, little-endian whatever the
// host (detail/little_endian.hpp):
//   0       8   magic, e.g. "FEATXPCA"
//   8       4   uint32 version
//   12      ..  the rest of a fixed header, then the payload
//   end-4   4   uint32 CRC-32C (featx/crc32c.hpp) of every byte before it
// Writing: begin_file(), the fields (put_u32 ...), seal_file(), write_file()
// (detail/atomic_file.hpp).
// Reading: CheckedReader, which checks the opening (empty, magic, header,
// version), reads the payload with each read's bounds checked before it
// happens, and at expect_end() the exact size and the checksum. The .fxi
// index (search.hpp) opens the same way (check_opening) but has no
// checksum: it is mapped and every value in it checked instead. Every
// problem is a one-line Status naming the file.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "featx/crc32c.hpp"
#include "featx/detail/atomic_file.hpp"
#include "featx/detail/little_endian.hpp"
#include "featx/status.hpp"

namespace featx {
namespace detail {

// One file format: its magic, the version this featx reads and writes, the
// fixed header's size (magic and version included) and what errors call it
// ("not a featx PCA file", "PCA file format version 2 is not supported").
struct FileKind {
  const char* magic;  // 8 bytes
  uint32_t version;
  size_t header_bytes;
  const char* what;
};

// Empty, foreign (the magic is compared over the bytes there are, so a
// featx file cut short is truncated, not foreign), shorter than the header,
// another version.
inline Status check_opening(const uint8_t* data, size_t size, const std::string& name, const FileKind& kind) {
  const std::string what = kind.what;
  if (size == 0) return corrupt(name + ": empty file (not a featx " + what + ")");
  if (data == nullptr) return invalid_argument(name + ": null data pointer");
  if (std::memcmp(data, kind.magic, std::min<size_t>(size, 8)) != 0)
    return corrupt(name + ": not a featx " + what + " (bad magic)");
  if (size < kind.header_bytes)
    return corrupt(name + ": truncated header (" + std::to_string(size) + " bytes, the header has " +
                   std::to_string(kind.header_bytes) + ")");
  const uint32_t version = get_u32(data + 8);
  if (version != kind.version)
    return unsupported(name + ": " + what + " format version " + std::to_string(version) +
                       " is not supported (this featx reads version " + std::to_string(kind.version) + ")");
  return Status::Ok();
}

// A checksummed file's bytes, read from its start; open() first.
class CheckedReader {
 public:
  CheckedReader(const uint8_t* data, size_t size, const std::string& name, const FileKind& kind)
      : data_(data), size_(size), at_(kind.header_bytes), name_(name), kind_(kind) {}

  Status open() const { return check_opening(data_, size_, name_, kind_); }

  // Header fields by offset (below header_bytes: open() checked they are there).
  uint32_t u32_at(size_t offset) const { return get_u32(data_ + offset); }
  uint64_t u64_at(size_t offset) const { return get_u64(data_ + offset); }
  double f64_at(size_t offset) const { return get_f64(data_ + offset); }

  // The payload after the header, in order: has(n) before reading n bytes.
  size_t offset() const { return at_; }
  bool has(size_t n) const { return size_ - at_ >= n; }
  uint32_t u32() {
    at_ += 4;
    return get_u32(data_ + at_ - 4);
  }
  std::string text(size_t n) {
    at_ += n;
    return std::string(reinterpret_cast<const char*>(data_ + at_ - n), n);
  }

  // The file is the bytes read so far, `payload` more and the checksum:
  // exactly that size (`need` says what asks for it: "its header needs"),
  // and the checksum matches. Reads of the payload are in bounds after it.
  // `payload` comes from header fields the caller bounded first (PCA: below
  // 2^44 bytes, probe: below 2^30), so the sum below does not wrap.
  Status expect_end(uint64_t payload, const std::string& need) const {
    const uint64_t want = uint64_t(at_) + payload + 4;
    if (uint64_t(size_) < want)
      return corrupt(name_ + ": truncated " + kind_.what + " (" + std::to_string(size_) + " bytes, " + need + " " +
                     std::to_string(want) + ")");
    if (uint64_t(size_) > want)
      return corrupt(name_ + ": " + std::to_string(uint64_t(size_) - want) + " trailing bytes (" + need + " " +
                     std::to_string(want) + ")");
    if (crc32c(data_, size_ - 4) != get_u32(data_ + size_ - 4))
      return corrupt(name_ + ": checksum mismatch (" + kind_.what + " damaged)");
    return Status::Ok();
  }

  // `count` float64 values (after expect_end), failing on the first non-finite one.
  Status finite_f64(const char* what, size_t count, std::vector<double>* out) {
    out->resize(count);
    for (size_t i = 0; i < count; ++i) {
      const double v = get_f64(data_ + at_ + 8 * i);
      if (!std::isfinite(v))
        return corrupt(name_ + ": non-finite value in the " + what + " (entry " + std::to_string(i) + ")");
      (*out)[i] = v;
    }
    at_ += 8 * count;
    return Status::Ok();
  }

 private:
  const uint8_t* data_;
  size_t size_, at_;
  std::string name_;
  FileKind kind_;
};

// Starts a file image of about `bytes` bytes: the magic and the version.
inline void begin_file(const FileKind& kind, size_t bytes, std::vector<uint8_t>* b) {
  b->clear();
  b->reserve(bytes);
  b->insert(b->end(), kind.magic, kind.magic + 8);
  put_u32(b, kind.version);
}

// Ends it with the CRC-32C of every byte before.
inline void seal_file(std::vector<uint8_t>* b) { put_u32(b, crc32c(b->data(), b->size())); }

}  // namespace detail
}  // namespace featx
