// featx/file.hpp: read a whole file into memory, with errors as values.
//
// Decoders (images, .npy) work on bytes in memory so that one code path
// serves files, embedded data and fuzzing alike; this is the one place that
// touches the file system for reading. Plain <cstdio> keeps it usable on
// embedded targets without <filesystem>.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "featx/status.hpp"

namespace featx {

// Reads all of `path` into *out. Fails with not_found for a missing file,
// io_error for unreadable ones (directories, permissions) and
// invalid_argument when the file is larger than max_bytes (checked while
// reading, so pipes and growing files cannot exhaust memory).
inline Status read_file(const std::string& path, std::vector<uint8_t>* out,
                        uint64_t max_bytes = UINT64_MAX) {
  out->clear();
  errno = 0;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return not_found(path + ": no such file");
    return io_error(path + ": cannot open (" + std::strerror(err) + ")");
  }
  // Probe one byte first: Linux lets fopen succeed on a directory, and its
  // "size" from ftell can be nonsense, so fail on the read before using it.
  const int first = std::fgetc(f);
  if (first == EOF) {
    const bool failed = std::ferror(f) != 0;
    const int err = errno;
    std::fclose(f);
    if (!failed) return Status::Ok();  // empty file: the caller decides if that is an error
    if (err == EISDIR) return io_error(path + ": is a directory");
    return io_error(path + ": read failed (" + std::strerror(err != 0 ? err : EIO) + ")");
  }
  // A size hint rejects huge files early and saves reallocations;
  // non-seekable inputs (pipes) simply skip it.
  if (std::fseek(f, 0, SEEK_END) == 0) {
    const long size = std::ftell(f);
    if (size > 0 && static_cast<uint64_t>(size) > max_bytes) {
      std::fclose(f);
      return invalid_argument(path + ": file too large (" + std::to_string(size) +
                              " bytes, limit " + std::to_string(max_bytes) + ")");
    }
    // +1 so the final short read that detects EOF needs no reallocation.
    if (size > 0) out->reserve(static_cast<size_t>(size) + 1);
    std::rewind(f);  // also clears the error flags
  } else {
    std::clearerr(f);
    out->push_back(static_cast<uint8_t>(first));  // cannot rewind a pipe: keep the probe
  }

  // Read straight into the vector (no large stack buffer for small targets).
  const size_t step = size_t(1) << 16;
  for (;;) {
    const size_t used = out->size();
    if (used >= max_bytes) {
      // At the limit: one more byte means the file is too large.
      int c = std::fgetc(f);
      if (c == EOF) break;
      std::fclose(f);
      out->clear();
      return invalid_argument(path + ": file too large (limit " + std::to_string(max_bytes) +
                              " bytes)");
    }
    const size_t want = static_cast<size_t>(
        std::min<uint64_t>(std::max<size_t>(step, out->capacity() - used), max_bytes - used));
    out->resize(used + want);
    const size_t n = std::fread(out->data() + used, 1, want, f);
    out->resize(used + n);
    if (n < want) break;
  }
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) {
    out->clear();
    return io_error(path + ": read failed (" + std::strerror(err != 0 ? err : EIO) + ")");
  }
  return Status::Ok();
}

}  // namespace featx
