// featx/npy_writer.hpp: a float32 .npy file written a few rows at a time.
//
// For outputs too large to hold in memory (feature vectors of millions of
// images): rows are appended as they are computed and the header's row
// count is rewritten after each append, so the file on disk is at every
// moment a valid .npy of the rows written so far (its header has room for
// any count: it is reserved at kStreamHeaderBytes). A writer can reopen a
// file a killed process left behind and go on after its complete rows.
//
//   NpyRowWriter w;
//   Status st = NpyRowWriter::create("part.npy", {1280}, &w);
//   st = w.append(rows, 2);         // 2 x 1280 floats
//   st = w.finish();                // flushed to disk (fsync), closed
//
// POSIX file calls (open, pwrite, ftruncate, fsync). Little-endian hosts.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "featx/detail/checked_size.hpp"
#include "featx/npy.hpp"
#include "featx/status.hpp"

namespace featx {

// Bytes of a streamed file's magic, version, length and header: a multiple
// of 64 (numpy's data alignment) with room for a shape of rank 8 with
// 19-digit dimensions.
constexpr size_t kStreamHeaderBytes = 256;

class NpyRowWriter {
 public:
  NpyRowWriter() = default;
  NpyRowWriter(const NpyRowWriter&) = delete;
  NpyRowWriter& operator=(const NpyRowWriter&) = delete;
  NpyRowWriter(NpyRowWriter&& o) noexcept { swap(o); }
  NpyRowWriter& operator=(NpyRowWriter&& o) noexcept {
    NpyRowWriter tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  ~NpyRowWriter() {
    if (fd_ >= 0) ::close(fd_);
  }

  // Creates (or truncates) `path` for rows of shape `row_shape`, no rows yet.
  static Status create(const std::string& path, const std::vector<int64_t>& row_shape, NpyRowWriter* out) {
    NpyRowWriter w;
    w.path_ = path;
    w.row_shape_ = row_shape;
    FEATX_RETURN_IF_ERROR(w.set_row_floats());
    w.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w.fd_ < 0) return io_error(path + ": cannot create (" + std::strerror(errno) + ")");
    FEATX_RETURN_IF_ERROR(w.write_header());
    *out = std::move(w);
    return Status::Ok();
  }

  // Reopens a file an NpyRowWriter wrote and did not finish (the process was
  // killed): its row shape and count come from its header; rows past
  // `max_rows` and any partial row after the last whole one are cut off.
  static Status reopen(const std::string& path, size_t max_rows, NpyRowWriter* out) {
    NpyRowWriter w;
    w.path_ = path;
    w.fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (w.fd_ < 0) return io_error(path + ": cannot open (" + std::strerror(errno) + ")");
    uint8_t head[kStreamHeaderBytes];
    if (::pread(w.fd_, head, sizeof head, 0) != ssize_t(sizeof head))
      return corrupt(path + ": shorter than a streamed .npy header");
    std::vector<int64_t> shape;
    FEATX_RETURN_IF_ERROR(read_npy_header(head, sizeof head, path, &shape, nullptr));
    if (shape.empty() || head[8] + (size_t(head[9]) << 8) + 10 != kStreamHeaderBytes)
      return corrupt(path + ": not a streamed .npy file (header of another size)");
    w.row_shape_.assign(shape.begin() + 1, shape.end());
    FEATX_RETURN_IF_ERROR(w.set_row_floats());
    struct stat st;
    if (::fstat(w.fd_, &st) != 0) return io_error(path + ": cannot stat");
    // In 64 bits: the file and its header's count may pass a 32-bit size_t.
    const uint64_t whole = (uint64_t(st.st_size) - kStreamHeaderBytes) / w.row_bytes();
    const uint64_t stated = std::min(uint64_t(shape[0]), whole);
    const size_t rows = stated < max_rows ? size_t(stated) : max_rows;
    FEATX_RETURN_IF_ERROR(w.truncate_to(rows));
    *out = std::move(w);
    return Status::Ok();
  }

  // Appends `n` rows (n x row floats) and records the new count in the header.
  Status append(const float* rows, size_t n) {
    const size_t bytes = n * row_bytes();  // the caller's n rows are in memory: it fits
    size_t end = 0;  // rows_ + n: each at most SIZE_MAX / row_bytes(), no wrap
    FEATX_RETURN_IF_ERROR(file_bytes(rows_ + n, &end));
    const off_t at = off_t(end - bytes);
    const char* p = reinterpret_cast<const char*>(rows);
    for (size_t done = 0; done < bytes;) {
      const ssize_t w = ::pwrite(fd_, p + done, bytes - done, at + off_t(done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return io_error(path_ + ": write failed (" + std::strerror(errno) + ")");
      done += size_t(w);
    }
    rows_ += n;
    return write_header();
  }

  // Keeps the first `rows` rows (rows <= this->rows()).
  Status truncate_to(size_t rows) {
    size_t end = 0;
    FEATX_RETURN_IF_ERROR(file_bytes(rows, &end));
    rows_ = rows;
    if (::ftruncate(fd_, off_t(end)) != 0)
      return io_error(path_ + ": cannot truncate (" + std::strerror(errno) + ")");
    return write_header();
  }

  // Flushes the file to disk and closes it.
  Status finish() {
    const bool synced = ::fsync(fd_) == 0;
    const bool closed = ::close(fd_) == 0;
    fd_ = -1;
    if (!synced || !closed) return io_error(path_ + ": write failed (" + std::strerror(errno) + ")");
    return Status::Ok();
  }

  size_t rows() const { return rows_; }
  size_t row_floats() const { return row_floats_; }
  const std::vector<int64_t>& row_shape() const { return row_shape_; }
  const std::string& path() const { return path_; }

 private:
  size_t row_bytes() const { return row_floats_ * sizeof(float); }  // set_row_floats: it fits
  // The file's size with `rows` rows, refused when it passes size_t or off_t
  // (a 32-bit target).
  Status file_bytes(size_t rows, size_t* bytes) const {
    detail::SizeCheck size;
    *bytes = size.add(kStreamHeaderBytes, size.mul(rows, row_bytes()));
    if (size.overflow || uint64_t(*bytes) > uint64_t(std::numeric_limits<off_t>::max()))
      return invalid_argument(path_ + ": " + std::to_string(rows) + " rows of " + std::to_string(row_bytes()) +
                              " bytes are a larger file than this target can address");
    return Status::Ok();
  }

  Status set_row_floats() {
    if (row_shape_.size() + 1 > 8) return invalid_argument(path_ + ": rows of rank above 7");
    // An empty row shape is a 1-d array of no rows, shape (0,).
    if (!npy_detail::element_count(row_shape_, &row_floats_))
      return invalid_argument(path_ + ": rows of shape " + npy_detail::shape_string(row_shape_) +
                              " are more than this target can address");
    if (row_floats_ == 0)
      return invalid_argument(path_ + ": rows of shape " + npy_detail::shape_string(row_shape_) + " are empty");
    return Status::Ok();
  }

  Status write_header() {
    std::vector<int64_t> shape{int64_t(rows_)};
    shape.insert(shape.end(), row_shape_.begin(), row_shape_.end());
    const std::string head = npy_detail::header_bytes(shape, kStreamHeaderBytes);
    if (::pwrite(fd_, head.data(), head.size(), 0) != ssize_t(head.size()))
      return io_error(path_ + ": write failed (" + std::strerror(errno) + ")");
    return Status::Ok();
  }

  void swap(NpyRowWriter& o) noexcept {
    std::swap(fd_, o.fd_);
    std::swap(path_, o.path_);
    std::swap(row_shape_, o.row_shape_);
    std::swap(row_floats_, o.row_floats_);
    std::swap(rows_, o.rows_);
  }

  int fd_ = -1;
  std::string path_;
  std::vector<int64_t> row_shape_;
  size_t row_floats_ = 0, rows_ = 0;
};

}  // namespace featx
