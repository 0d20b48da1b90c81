// featx/detail/atomic_file.hpp: a whole file written so that its final name
// only ever holds complete contents.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "featx/status.hpp"

namespace featx {
namespace detail {

// Writes `size` bytes to PATH.part, then renames it to `path`: a failed or
// interrupted write (full disk, file-size limit, a killed process) leaves no
// partial file under the final name, and an existing file there is replaced
// whole or not at all.
inline Status write_file(const std::string& path, const uint8_t* data, size_t size) {
  const std::string part = path + ".part";
  std::FILE* f = std::fopen(part.c_str(), "wb");
  if (f == nullptr) return io_error(path + ": cannot create (" + std::strerror(errno) + ")");
  errno = 0;
  const bool wrote = size == 0 || std::fwrite(data, 1, size, f) == size;
  int err = errno;
  const bool closed = std::fclose(f) == 0;  // buffered bytes meet the disk here
  if (err == 0) err = errno;
  if (!wrote || !closed) {
    std::remove(part.c_str());
    return io_error(path + ": write failed (" + (err ? std::strerror(err) : "short write") + ")");
  }
  if (std::rename(part.c_str(), path.c_str()) != 0) {
    err = errno;
    std::remove(part.c_str());
    return io_error(path + ": cannot rename " + part + " to it (" + std::strerror(err) + ")");
  }
  return Status::Ok();
}

}  // namespace detail
}  // namespace featx
