// featx/search.hpp: exact k-nearest-neighbour search by cosine similarity
// over feature vectors, and the index file that holds them.
//
//   featx::VectorIndex index;
//   featx::Status st = featx::VectorIndex::open("photos.fxi", &index);   // mmap, every byte checked
//   featx::SearchOptions so;  so.k = 10;
//   featx::SearchResults r;
//   st = index.search(query, /*nq=*/1, /*dims=*/1280, so, &r);          // r.of(0)[0..r.k): best first
//   std::printf("%s %f\n", index.name(r.of(0)[0].index).c_str(), r.of(0)[0].score);
//
// Method. Vectors are L2-normalised (in double) when the index is written,
// queries when they are searched, so cosine similarity is a dot product.
// Scores are a blocked matrix product: the database is cut into tiles of
// about 256 kB (they stay in a core's L2 while every block of 12 queries
// passes over them) and a register-tiled dot-product kernel per ISA
// (kernels/dot_*.hpp, chosen at run time like the network's kernels) fills
// query x row score blocks; each score enters a per-query top-k heap. Work
// items (query block, tile) are spread over OpenMP threads; each thread keeps
// its own heaps, merged at the end. Order: score descending, then index
// ascending. A score's bits do not depend on the tiling (kernels/dot_ref.hpp)
// and the top k of a total order is unique, so results are the same for any
// thread count, tile size or batch of queries (they differ between ISAs by
// float rounding, about 1e-7).
//
// Index file (.fxi, little-endian, version 1), made to be mapped in place:
//   0   char[8] "FEATXIDX"
//   8   u32 version (1)          12  u32 header bytes (64)
//   16  u32 dims                 20  u32 stride: dims rounded up to 16 floats
//   24  u64 count                32  u64 vectors offset (64)
//   40  u64 names offset (64 + count * stride * 4)
//   48  u64 names bytes          56  u32 flags (1: rows L2-normalised)  60 u32 0
//   64  count rows of stride float32: unit (or all-zero) vectors, zero-padded
//       after dims, so every row starts 64-byte aligned in a mapping
//   ..  count names, each ended by '\n' (no '\n' or NUL inside); end of file
// Opening checks every field, the exact file size, every value (finite,
// zero padding, norm 1 within 1e-4 or exactly 0) and the names; each bad
// file gets one line naming it and the problem. A zero vector (no
// direction) is kept and scores 0 against everything.
//
// Errors are featx::Status values; nothing here throws (builds with
// -fno-exceptions). Memory: the mapped file, the names' offsets (8 bytes per
// vector) and, per search, the normalised queries and threads x queries x k
// heap entries (bounded by processing queries in chunks).
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "featx/detail/allocator_hooks.hpp"
#include "featx/detail/checked_file.hpp"
#include "featx/detail/checked_size.hpp"
#include "featx/detail/little_endian.hpp"
#include "featx/detail/parallel.hpp"
#include "featx/kernels/dot_select.hpp"
#include "featx/kernels/isa.hpp"
#include "featx/mapped_file.hpp"
#include "featx/status.hpp"

namespace featx {

constexpr char kIndexMagic[8] = {'F', 'E', 'A', 'T', 'X', 'I', 'D', 'X'};
constexpr uint32_t kIndexVersion = 1;
constexpr size_t kIndexHeaderBytes = 64;
constexpr uint32_t kIndexFlagNormalized = 1;
constexpr uint32_t kIndexMaxDims = 1u << 16;  // MobileNetV2 gives 1280-1792; more is a damaged header
constexpr uint64_t kIndexMaxCount = uint64_t(1) << 40;
constexpr double kIndexNormTolerance = 1e-4;  // |norm^2 - 1|: float rounding is ~1e-7
// Its opening (magic, version, header) is checked as featx's other files' are (detail/checked_file.hpp).
constexpr detail::FileKind kIndexFile{kIndexMagic, kIndexVersion, kIndexHeaderBytes, "index"};

struct Neighbor {
  float score = 0.0f;  // cosine similarity
  uint64_t index = 0;  // row of the index
};

// The search order: a before b.
inline bool neighbor_before(const Neighbor& a, const Neighbor& b) {
  return a.score > b.score || (a.score == b.score && a.index < b.index);
}

struct SearchResults {
  size_t queries = 0;
  size_t k = 0;                     // slots per query: min(requested k, index size)
  std::vector<Neighbor> neighbors;  // queries x k, best first
  std::vector<size_t> counts;       // neighbours found per query: k for exact search
  const Neighbor* of(size_t q) const { return neighbors.data() + q * k; }
};

struct SearchOptions {
  size_t k = 10;
  int threads = 0;               // 0: OpenMP's default
  Isa isa = selected_isa();      // unsupported ISAs fall back to the scalar kernel
  size_t tile_bytes = 256 << 10; // database rows per tile: about this many bytes
};

namespace search_detail {

inline size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

inline bool little_endian_host() {
  const uint16_t one = 1;
  uint8_t b = 0;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

// Little-endian fields: featx/detail/little_endian.hpp.
using detail::get_u32;
using detail::get_u64;
using detail::put_u32;
using detail::put_u64;

inline size_t stride_for(size_t dims) { return round_up(dims, kDotStrideAlign); }

inline void make_header(uint8_t* h, uint32_t dims, uint64_t count, uint64_t names_bytes) {
  std::memset(h, 0, kIndexHeaderBytes);
  std::memcpy(h, kIndexMagic, 8);
  const uint64_t stride = stride_for(dims);
  put_u32(h + 8, kIndexVersion);
  put_u32(h + 12, uint32_t(kIndexHeaderBytes));
  put_u32(h + 16, dims);
  put_u32(h + 20, uint32_t(stride));
  put_u64(h + 24, count);
  put_u64(h + 32, kIndexHeaderBytes);
  put_u64(h + 40, kIndexHeaderBytes + count * stride * 4);
  put_u64(h + 48, names_bytes);
  put_u32(h + 56, kIndexFlagNormalized);
}

// Index of the first non-finite value of v[0..n), or n.
inline size_t first_non_finite(const float* v, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i])) return i;
  return n;
}

// dst[0..stride) = src / |src| (double arithmetic), zero-padded; a zero
// vector stays zero. src must be finite.
inline void normalize_row(const float* src, size_t dims, float* dst, size_t stride) {
  double sum = 0.0;
  for (size_t i = 0; i < dims; ++i) sum += double(src[i]) * double(src[i]);
  const double inv = sum > 0.0 ? 1.0 / std::sqrt(sum) : 0.0;
  for (size_t i = 0; i < dims; ++i) dst[i] = float(double(src[i]) * inv);
  for (size_t i = dims; i < stride; ++i) dst[i] = 0.0f;
}

// Floats in 64-byte aligned memory; a failed allocation is reported, not thrown.
class FloatBuffer {
 public:
  FloatBuffer() = default;
  FloatBuffer(const FloatBuffer&) = delete;
  FloatBuffer& operator=(const FloatBuffer&) = delete;
  ~FloatBuffer() { detail::free_bytes(p_); }
  bool reset(size_t n) {
    detail::free_bytes(p_);
    p_ = nullptr;
    n_ = 0;
    if (n > std::numeric_limits<size_t>::max() / sizeof(float)) return false;
    p_ = static_cast<float*>(detail::allocate_bytes(n * sizeof(float)));
    if (!p_) return false;
    n_ = n;
    return true;
  }
  float* data() { return p_; }
  size_t size() const { return n_; }

 private:
  float* p_ = nullptr;
  size_t n_ = 0;
};

// Keeps the k best neighbours seen, in a binary heap whose top is the worst
// of them (std heap functions with neighbor_before as "less").
struct TopK {
  Neighbor* items;
  size_t size;
  size_t k;
  void push(float score, uint64_t index) {
    if (size == k) {
      const Neighbor& worst = items[0];
      if (score < worst.score || (score == worst.score && index > worst.index)) return;
      std::pop_heap(items, items + k, neighbor_before);
      items[k - 1] = Neighbor{score, index};
      std::push_heap(items, items + k, neighbor_before);
      return;
    }
    items[size++] = Neighbor{score, index};
    std::push_heap(items, items + size, neighbor_before);
  }
};

}  // namespace search_detail

// An index of L2-normalised vectors with a name each: a checked view of an
// .fxi file's bytes (mapped, or copied to aligned memory). Movable.
class VectorIndex {
 public:
  // Maps `path` and checks it (see the format above).
  static Status open(const std::string& path, VectorIndex* out) {
    ByteSource bytes;
    FEATX_RETURN_IF_ERROR(ByteSource::open(path, &bytes));
    return adopt(std::move(bytes), path, out);
  }

  // The same checks on bytes in memory (copied first, so rows are aligned);
  // `name` labels the errors. The entry point for fuzzing.
  static Status from_memory(const void* data, size_t size, const std::string& name, VectorIndex* out) {
    ByteSource bytes;
    FEATX_RETURN_IF_ERROR(ByteSource::copy(data, size, name, &bytes));
    return adopt(std::move(bytes), name, out);
  }

  // An index in memory from `count` vectors of `dims` floats, `row_floats`
  // apart (0: dims), normalised here; names: one per vector, or empty for
  // "0", "1", ... `name` labels the errors.
  static Status build(const float* vectors, size_t count, size_t dims, size_t row_floats,
                      const std::vector<std::string>& names, const std::string& name, VectorIndex* out);

  // Writes the index's bytes to `path` (through path.part, renamed at the end).
  Status save(const std::string& path) const;

  size_t size() const { return count_; }
  size_t dims() const { return dims_; }
  size_t stride() const { return stride_; }  // floats between rows (>= dims, zero padding)
  const std::string& path() const { return path_; }
  const float* rows() const { return rows_; }
  const float* row(size_t i) const { return rows_ + i * stride_; }
  std::string name(size_t i) const {
    return std::string(names_ + name_offsets_[i], names_ + name_offsets_[i + 1] - 1);
  }
  size_t file_bytes() const { return bytes_.size(); }

  // The k nearest rows of each of `nq` queries (`dims` floats each, `dims`
  // apart) by cosine similarity. Queries are normalised here; a query with a
  // non-finite value is refused, a zero query scores 0 everywhere.
  Status search(const float* queries, size_t nq, size_t dims, const SearchOptions& options,
                SearchResults* out) const;

 private:
  static Status adopt(ByteSource bytes, const std::string& name, VectorIndex* out);
  Status check_rows() const;

  ByteSource bytes_;
  std::string path_;
  size_t dims_ = 0, stride_ = 0, count_ = 0;
  const float* rows_ = nullptr;
  const char* names_ = nullptr;
  std::vector<uint64_t> name_offsets_;  // count + 1: name i is [off[i], off[i+1] - 1)
};

// Writes an index file a batch of rows at a time, so a collection larger
// than memory can be indexed from a mapped .npy: rows are normalised as they
// come, names are kept until finish(). The file is PATH.part until finish()
// renames it; a writer dropped before that removes it.
class IndexWriter {
 public:
  IndexWriter() = default;
  IndexWriter(const IndexWriter&) = delete;
  IndexWriter& operator=(const IndexWriter&) = delete;
  ~IndexWriter() { abandon(); }

  Status open(const std::string& path, size_t dims) {
    abandon();
    if (!search_detail::little_endian_host()) return unsupported(path + ": index files need a little-endian host");
    if (dims == 0 || dims > kIndexMaxDims)
      return invalid_argument(path + ": cannot index vectors of " + std::to_string(dims) + " dimensions (1 to " +
                              std::to_string(kIndexMaxDims) + ")");
    path_ = path;
    part_ = path + ".part";
    dims_ = dims;
    stride_ = search_detail::stride_for(dims);
    count_ = 0;
    names_.clear();
    row_.resize(stride_);
    f_ = std::fopen(part_.c_str(), "wb");
    if (!f_) return io_error(part_ + ": cannot create (" + std::strerror(errno) + ")");
    uint8_t header[kIndexHeaderBytes];
    search_detail::make_header(header, uint32_t(dims_), 0, 0);
    if (std::fwrite(header, 1, sizeof header, f_) != sizeof header) return fail("write failed");
    return Status::Ok();
  }

  // n rows of dims floats, row_floats apart (0: dims); names[i] for row i.
  // Errors about the rows name `source` (e.g. the .npy they came from) and
  // the row as first_row + i.
  Status add(const float* rows, size_t n, size_t row_floats, const std::string* names, const std::string& source,
             size_t first_row = 0) {
    if (!f_) return Status(StatusCode::internal, path_ + ": index writer is not open");
    if (row_floats == 0) row_floats = dims_;
    for (size_t r = 0; r < n; ++r) {
      const float* v = rows + r * row_floats;
      const size_t bad = search_detail::first_non_finite(v, dims_);
      if (bad < dims_)
        return fail_input(source + ": row " + std::to_string(first_row + r) + ", dimension " + std::to_string(bad) +
                          ": non-finite value (cannot index it)");
      const std::string& nm = names[r];
      if (nm.find('\n') != std::string::npos || nm.find('\0') != std::string::npos)
        return fail_input(source + ": the name of row " + std::to_string(first_row + r) +
                          " holds a newline or NUL byte");
      search_detail::normalize_row(v, dims_, row_.data(), stride_);
      if (std::fwrite(row_.data(), sizeof(float), stride_, f_) != stride_) return fail("write failed (disk full?)");
      names_ += nm;
      names_ += '\n';
    }
    count_ += n;
    if (count_ > kIndexMaxCount) return fail("too many vectors");
    return Status::Ok();
  }

  Status finish() {
    if (!f_) return Status(StatusCode::internal, path_ + ": index writer is not open");
    if (!names_.empty() && std::fwrite(names_.data(), 1, names_.size(), f_) != names_.size())
      return fail("write failed (disk full?)");
    uint8_t header[kIndexHeaderBytes];
    search_detail::make_header(header, uint32_t(dims_), count_, names_.size());
    if (std::fflush(f_) != 0 || std::fseek(f_, 0, SEEK_SET) != 0 ||
        std::fwrite(header, 1, sizeof header, f_) != sizeof header)
      return fail("write failed");
    const int closed = std::fclose(f_);
    f_ = nullptr;
    if (closed != 0) return fail("write failed (disk full?)");
    if (std::rename(part_.c_str(), path_.c_str()) != 0) return fail(std::string("cannot rename (") + std::strerror(errno) + ")");
    part_.clear();
    return Status::Ok();
  }

  size_t count() const { return count_; }

 private:
  Status fail(const std::string& why) {
    abandon();
    return io_error(path_ + ": " + why);
  }
  Status fail_input(const std::string& message) {
    abandon();
    return invalid_argument(message);
  }
  void abandon() {
    if (f_) std::fclose(f_);
    f_ = nullptr;
    if (!part_.empty()) std::remove(part_.c_str());
    part_.clear();
  }

  std::FILE* f_ = nullptr;
  std::string path_, part_;
  size_t dims_ = 0, stride_ = 0, count_ = 0;
  std::string names_;
  std::vector<float> row_;
};

// Writes `count` vectors of `dims` floats (normalised here) and their names.
inline Status write_index(const std::string& path, const float* vectors, size_t count, size_t dims,
                          const std::vector<std::string>& names) {
  if (names.size() != count)
    return invalid_argument(path + ": " + std::to_string(names.size()) + " names for " + std::to_string(count) +
                            " vectors");
  IndexWriter w;
  FEATX_RETURN_IF_ERROR(w.open(path, dims));
  FEATX_RETURN_IF_ERROR(w.add(vectors, count, dims, names.data(), path));
  return w.finish();
}

// ---- implementation ---------------------------------------------------------

inline Status VectorIndex::adopt(ByteSource bytes, const std::string& name, VectorIndex* out) {
  using namespace search_detail;
  const uint8_t* d = bytes.data();
  const size_t size = bytes.size();
  FEATX_RETURN_IF_ERROR(detail::check_opening(d, size, name, kIndexFile));
  if (!little_endian_host()) return unsupported(name + ": index files need a little-endian host");
  const uint32_t header_bytes = get_u32(d + 12), dims = get_u32(d + 16), stride = get_u32(d + 20),
                 flags = get_u32(d + 56), reserved = get_u32(d + 60);
  const uint64_t count = get_u64(d + 24), vectors_at = get_u64(d + 32), names_at = get_u64(d + 40),
                 names_bytes = get_u64(d + 48);
  if (header_bytes != kIndexHeaderBytes)
    return corrupt(name + ": header size " + std::to_string(header_bytes) + ", expected " +
                   std::to_string(kIndexHeaderBytes));
  if (dims == 0 || dims > kIndexMaxDims)
    return corrupt(name + ": absurd dimension count " + std::to_string(dims) + " (1 to " +
                   std::to_string(kIndexMaxDims) + ")");
  if (stride != stride_for(dims))
    return corrupt(name + ": row stride " + std::to_string(stride) + " does not fit " + std::to_string(dims) +
                   " dimensions (expected " + std::to_string(stride_for(dims)) + ")");
  if (flags != kIndexFlagNormalized)
    return corrupt(name + ": unknown flags " + std::to_string(flags) + " (expected 1: normalised rows)");
  if (reserved != 0) return corrupt(name + ": reserved header field is not zero");
  if (vectors_at != kIndexHeaderBytes)
    return corrupt(name + ": vectors at offset " + std::to_string(vectors_at) + ", expected " +
                   std::to_string(kIndexHeaderBytes));
  detail::SizeCheck rows_size;  // count * stride * 4 wraps a 32-bit size_t from 2^26 rows
  const size_t names_expected =
      rows_size.add(kIndexHeaderBytes, rows_size.mul(rows_size.fit(count), size_t(stride) * sizeof(float)));
  if (count > kIndexMaxCount || rows_size.overflow)
    return corrupt(name + ": absurd vector count " + std::to_string(count));
  if (names_expected > size)
    return corrupt(name + ": truncated vectors (" + std::to_string(count) + " x " + std::to_string(dims) +
                   " need " + std::to_string(names_expected) + " bytes, file has " + std::to_string(size) + ")");
  if (names_at != names_expected)
    return corrupt(name + ": names at offset " + std::to_string(names_at) + ", expected " +
                   std::to_string(names_expected) + " (after " + std::to_string(count) + " rows)");
  if (names_bytes > uint64_t(size) - names_at)
    return corrupt(name + ": truncated names (header says " + std::to_string(names_bytes) + " bytes, file has " +
                   std::to_string(uint64_t(size) - names_at) + ")");
  if (names_at + names_bytes != size)
    return corrupt(name + ": " + std::to_string(uint64_t(size) - names_at - names_bytes) +
                   " unexpected bytes after the names");

  VectorIndex ix;
  ix.path_ = name;
  ix.dims_ = dims;
  ix.stride_ = stride;
  ix.count_ = size_t(count);
  ix.rows_ = reinterpret_cast<const float*>(d + vectors_at);
  ix.names_ = reinterpret_cast<const char*>(d + names_at);
  ix.name_offsets_.reserve(size_t(count) + 1);
  ix.name_offsets_.push_back(0);
  for (uint64_t i = 0; i < names_bytes; ++i) {
    const char c = ix.names_[i];
    if (c == '\0')
      return corrupt(name + ": the name of row " + std::to_string(ix.name_offsets_.size() - 1) +
                     " holds a NUL byte");
    if (c != '\n') continue;
    if (ix.name_offsets_.size() > count)
      return corrupt(name + ": more names than the " + std::to_string(count) + " vectors");
    ix.name_offsets_.push_back(i + 1);
  }
  if (ix.name_offsets_.size() != count + 1 || (names_bytes && ix.name_offsets_.back() != names_bytes))
    return corrupt(name + ": the names section holds " + std::to_string(ix.name_offsets_.size() - 1) +
                   " complete names for " + std::to_string(count) + " vectors");
  ix.bytes_ = std::move(bytes);
  FEATX_RETURN_IF_ERROR(ix.check_rows());
  *out = std::move(ix);
  return Status::Ok();
}

// Every row finite, zero-padded and of norm 1 (or 0). The norm comes from
// the search kernel itself (one pass over the file at memory speed); only a
// row that fails is looked at again, to name what is wrong with it.
inline Status VectorIndex::check_rows() const {
  const DotKernel kernel = dot_kernel(selected_isa());
  const size_t n = count_;
  size_t first_bad = n;
  const int threads = n < 1024 ? 1 : detail::resolve_threads(0);
  (void)threads;  // without OpenMP the pragma below is gone
  FEATX_OMP(parallel num_threads(threads))
  {
    size_t mine = n;
    FEATX_OMP(for schedule(static))
    for (size_t r = 0; r < n; ++r) {
      if (r > mine) continue;  // this thread already found an earlier bad row
      const float* v = row(r);
      float norm2 = 0.0f;
      kernel.tile(v, 1, v, 1, stride_, &norm2, 1);
      bool ok = std::isfinite(norm2) && (norm2 == 0.0f || std::fabs(double(norm2) - 1.0) <= kIndexNormTolerance);
      for (size_t i = dims_; ok && i < stride_; ++i) ok = v[i] == 0.0f;
      if (ok && norm2 == 0.0f)
        for (size_t i = 0; ok && i < dims_; ++i) ok = v[i] == 0.0f;  // no norm, yet non-zero: subnormal junk
      if (!ok && r < mine) mine = r;
    }
    FEATX_OMP(critical(featx_index_check))
    first_bad = std::min(first_bad, mine);
  }
  if (first_bad == n) return Status::Ok();
  const size_t r = first_bad;
  const float* v = row(r);
  const std::string where = path_ + ": row " + std::to_string(r);
  const size_t bad = search_detail::first_non_finite(v, stride_);
  if (bad < stride_) return corrupt(where + ", dimension " + std::to_string(bad) + ": non-finite value");
  for (size_t i = dims_; i < stride_; ++i)
    if (v[i] != 0.0f) return corrupt(where + ": padding after dimension " + std::to_string(dims_) + " is not zero");
  double sum = 0.0;
  for (size_t i = 0; i < dims_; ++i) sum += double(v[i]) * double(v[i]);
  char norm[32];
  std::snprintf(norm, sizeof norm, "%.9g", std::sqrt(sum));
  return corrupt(where + ": norm " + norm + " is not 1 (rows must be L2-normalised)");
}

inline Status VectorIndex::build(const float* vectors, size_t count, size_t dims, size_t row_floats,
                                 const std::vector<std::string>& names, const std::string& name,
                                 VectorIndex* out) {
  using namespace search_detail;
  if (dims == 0 || dims > kIndexMaxDims)
    return invalid_argument(name + ": cannot index vectors of " + std::to_string(dims) + " dimensions");
  if (!names.empty() && names.size() != count)
    return invalid_argument(name + ": " + std::to_string(names.size()) + " names for " + std::to_string(count) +
                            " vectors");
  if (!little_endian_host()) return unsupported(name + ": index files need a little-endian host");
  if (row_floats == 0) row_floats = dims;
  const size_t stride = stride_for(dims);
  detail::SizeCheck size;
  const size_t rows_bytes = size.mul(count, stride, sizeof(float));
  size.add(kIndexHeaderBytes, rows_bytes);
  if (size.overflow) return invalid_argument(name + ": too many vectors to index in memory");
  std::string text;
  for (size_t i = 0; i < count; ++i) {
    const std::string nm = names.empty() ? std::to_string(i) : names[i];
    if (nm.find('\n') != std::string::npos || nm.find('\0') != std::string::npos)
      return invalid_argument(name + ": the name of row " + std::to_string(i) + " holds a newline or NUL byte");
    text += nm;
    text += '\n';
  }
  const size_t image_bytes = size.add(kIndexHeaderBytes + rows_bytes, text.size());
  if (size.overflow) return invalid_argument(name + ": too many vectors to index in memory");
  uint8_t header[kIndexHeaderBytes];
  make_header(header, uint32_t(dims), count, text.size());
  std::vector<uint8_t> image(header, header + kIndexHeaderBytes);
  image.resize(image_bytes);
  std::vector<float> row(stride);
  for (size_t r = 0; r < count; ++r) {
    const float* v = vectors + r * row_floats;
    const size_t bad = first_non_finite(v, dims);
    if (bad < dims)
      return invalid_argument(name + ": row " + std::to_string(r) + ", dimension " + std::to_string(bad) +
                              ": non-finite value (cannot index it)");
    normalize_row(v, dims, row.data(), stride);
    std::memcpy(image.data() + kIndexHeaderBytes + r * stride * 4, row.data(), stride * 4);
  }
  if (!text.empty()) std::memcpy(image.data() + kIndexHeaderBytes + rows_bytes, text.data(), text.size());
  ByteSource bytes;
  FEATX_RETURN_IF_ERROR(ByteSource::copy(image.data(), image.size(), name, &bytes));
  return adopt(std::move(bytes), name, out);
}

inline Status VectorIndex::save(const std::string& path) const {
  return detail::write_file(path, bytes_.data(), bytes_.size());
}

inline Status VectorIndex::search(const float* queries, size_t nq, size_t dims, const SearchOptions& options,
                                  SearchResults* out) const {
  using namespace search_detail;
  out->queries = nq;
  out->k = 0;
  out->neighbors.clear();
  out->counts.clear();
  if (options.k == 0) return invalid_argument("k must be at least 1");
  if (dims != dims_)
    return invalid_argument("queries of " + std::to_string(dims) + " dimensions for " + path_ + ", which holds " +
                            std::to_string(dims_) + "-dimensional vectors");
  if (nq > 0 && queries == nullptr) return invalid_argument("null queries");
  for (size_t q = 0; q < nq; ++q) {
    const size_t bad = first_non_finite(queries + q * dims, dims);
    if (bad < dims)
      return invalid_argument("query " + std::to_string(q) + ", dimension " + std::to_string(bad) +
                              ": non-finite value");
  }
  const size_t k = std::min(options.k, count_);
  out->k = k;
  out->counts.assign(nq, k);
  if (k == 0 || nq == 0) return Status::Ok();

  const DotKernel kernel = dot_kernel(options.isa);
  const int threads = detail::resolve_threads(options.threads);
  // Queries per kernel call: a multiple of every kernel's MR (2, 3, 4), and
  // 12 rows of 1280 floats (60 kB) that stream from L1/L2 against a tile.
  constexpr size_t kQueryBlock = 12;
  const size_t row_bytes = stride_ * sizeof(float);
  size_t tile = std::max<size_t>(12, options.tile_bytes / row_bytes / 12 * 12);
  tile = std::min(tile, round_up(count_, 12));
  // nq x k results and threads x k heap entries wrap a 32-bit size_t from
  // 2^16 x 2^16: checked before anything is sized by them.
  detail::SizeCheck size;
  const size_t results = size.mul(nq, k);
  size.mul(results, sizeof(Neighbor));
  const size_t heap_row_bytes = size.mul(size_t(threads), k, sizeof(Neighbor));
  // Queries per chunk: the heaps (threads x chunk x k entries) stay near 64 MB.
  const size_t heap_budget = size_t(64) << 20;
  size_t chunk = heap_row_bytes ? heap_budget / heap_row_bytes : 0;
  chunk = std::max(kQueryBlock, std::min<size_t>(chunk / kQueryBlock * kQueryBlock, 4096));
  chunk = std::min(chunk, round_up(nq, kQueryBlock));
  const size_t query_floats = size.mul(chunk, stride_), scratch_floats = size.mul(size_t(threads), kQueryBlock, tile);
  const size_t heap_slots = size.mul(size_t(threads), chunk), heap_entries = size.mul(heap_slots, k);
  size.mul(heap_entries, sizeof(Neighbor));
  if (size.overflow) {
    out->k = 0;
    out->counts.clear();
    return invalid_argument(path_ + ": " + std::to_string(nq) + " queries x " + std::to_string(k) +
                            " neighbours on " + std::to_string(threads) +
                            " threads need more memory than this target can address");
  }
  out->neighbors.resize(results);

  FloatBuffer qbuf, scratch;
  std::vector<Neighbor> heap_items;
  std::vector<size_t> heap_sizes;
  if (!qbuf.reset(query_floats) || !scratch.reset(scratch_floats))
    return Status(StatusCode::internal, path_ + ": out of memory for a search of " + std::to_string(nq) + " queries");
  heap_items.resize(heap_entries);
  heap_sizes.resize(heap_slots);
  std::vector<Neighbor> merged;

  const size_t tiles = (count_ + tile - 1) / tile;
  for (size_t q0 = 0; q0 < nq; q0 += chunk) {
    const size_t cq = std::min(chunk, nq - q0);
    for (size_t q = 0; q < cq; ++q) normalize_row(queries + (q0 + q) * dims, dims, qbuf.data() + q * stride_, stride_);
    std::fill(heap_sizes.begin(), heap_sizes.end(), size_t(0));
    const size_t blocks = (cq + kQueryBlock - 1) / kQueryBlock;
    const size_t items = tiles * blocks;
    const int team = int(std::min<size_t>(size_t(threads), items));
    // Items tile-major: consecutive items share a tile, which stays in cache.
    FEATX_OMP(parallel for schedule(dynamic, 1) num_threads(team))
    for (size_t item = 0; item < items; ++item) {
      const size_t t = item / blocks, b = item % blocks;
      const size_t tid = size_t(detail::thread_index());
      const size_t r0 = t * tile, nr = std::min(tile, count_ - r0);
      const size_t b0 = b * kQueryBlock, nb = std::min(kQueryBlock, cq - b0);
      float* scores = scratch.data() + tid * kQueryBlock * tile;
      kernel.tile(qbuf.data() + b0 * stride_, nb, row(r0), nr, stride_, scores, tile);
      for (size_t i = 0; i < nb; ++i) {
        const size_t slot = tid * chunk + b0 + i;
        TopK heap{heap_items.data() + slot * k, heap_sizes[slot], k};
        const float* s = scores + i * tile;
        for (size_t j = 0; j < nr; ++j) heap.push(s[j], uint64_t(r0 + j));
        heap_sizes[slot] = heap.size;
      }
    }
    // Merge the threads' heaps: the best k of their union, which is the best
    // k overall whichever thread saw which row.
    for (size_t q = 0; q < cq; ++q) {
      merged.clear();
      for (int th = 0; th < team; ++th) {
        const size_t slot = size_t(th) * chunk + q;
        merged.insert(merged.end(), heap_items.begin() + std::ptrdiff_t(slot * k),
                      heap_items.begin() + std::ptrdiff_t(slot * k + heap_sizes[slot]));
      }
      std::partial_sort(merged.begin(), merged.begin() + std::ptrdiff_t(k), merged.end(), neighbor_before);
      std::copy(merged.begin(), merged.begin() + std::ptrdiff_t(k), out->neighbors.begin() + std::ptrdiff_t((q0 + q) * k));
    }
  }
  return Status::Ok();
}

}  // namespace featx
