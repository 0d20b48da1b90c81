// featx/npy.hpp: read and write NumPy .npy files holding float32 arrays.
//
// featx exchanges tensors with Python as .npy (pre-resized inputs, feature
// outputs, goldens), so only what that needs is supported, strictly:
//   read:  format versions 1.0 and 2.0 (3.0 too: it only differs in allowing
//          UTF-8 in the header), dtype '<f4', C order, any rank up to 64.
//   write: format 1.0, '<f4', C order.
// Anything else (another dtype, big-endian, Fortran order, trailing or
// missing bytes) is an error naming the file and what was found; nothing is
// converted silently.
//
// Format reference: numpy/lib/format.py ("NEP 1"): the magic "\x93NUMPY",
// major and minor version bytes, a little-endian header length (uint16 for
// 1.0, uint32 for 2.0/3.0), then a Python dict literal with exactly the keys
// 'descr', 'fortran_order' and 'shape', padded with spaces and a newline so
// the data starts 64-byte aligned.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "featx/detail/atomic_file.hpp"
#include "featx/detail/checked_size.hpp"
#include "featx/file.hpp"
#include "featx/status.hpp"

namespace featx {

struct NpyArray {
  std::vector<int64_t> shape;  // empty for a 0-d (scalar) array
  std::vector<float> data;     // C order, product(shape) values
};

namespace npy_detail {

constexpr uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr size_t kMaxRank = 64;  // numpy 2 allows 64 dimensions (numpy 1: 32)

inline bool host_is_little_endian() {
  const uint16_t one = 1;
  uint8_t first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

// Element count for `shape`, or false when it is negative or its byte size
// would overflow size_t.
inline bool element_count(const std::vector<int64_t>& shape, size_t* count) {
  detail::SizeCheck size;
  const size_t n = size.product(shape);
  size.mul(n, sizeof(float));
  if (size.overflow) return false;
  *count = n;
  return true;
}

inline std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";  // Python's 1-tuple spelling
  return s + ")";
}

// A tiny parser for the Python literal dict numpy writes, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// Tolerates any whitespace, either quote style, trailing commas and
// Python 2's "3L" integers, since other writers (old numpy, C++ libraries)
// vary in exactly those ways. Errors are returned as short phrases.
class HeaderParser {
 public:
  HeaderParser(const char* begin, const char* end) : p_(begin), end_(end) {}

  // On success fills descr, fortran_order and shape; otherwise sets *error.
  bool parse(std::string* descr, bool* fortran_order, std::vector<int64_t>* shape,
             std::string* error) {
    bool have_descr = false, have_order = false, have_shape = false;
    skip_ws();
    if (!eat('{')) return fail(error, "header is not a dict");
    for (;;) {
      skip_ws();
      if (eat('}')) break;
      std::string key;
      if (!parse_string(&key)) return fail(error, "expected a quoted key in the header");
      skip_ws();
      if (!eat(':')) return fail(error, "expected ':' after '" + key + "'");
      skip_ws();
      if (key == "descr") {
        if (have_descr) return fail(error, "duplicate key 'descr'");
        // A structured dtype is a list, not a string: report it as such.
        if (!parse_string(descr)) return fail(error, "descr is not a simple dtype string (structured dtypes are not supported)");
        have_descr = true;
      } else if (key == "fortran_order") {
        if (have_order) return fail(error, "duplicate key 'fortran_order'");
        if (!parse_bool(fortran_order)) return fail(error, "fortran_order is not True or False");
        have_order = true;
      } else if (key == "shape") {
        if (have_shape) return fail(error, "duplicate key 'shape'");
        std::string why;
        if (!parse_shape(shape, &why)) return fail(error, "bad shape: " + why);
        have_shape = true;
      } else {
        return fail(error, "unexpected key '" + key + "' in the header");
      }
      skip_ws();
      if (eat(',')) continue;
      skip_ws();
      if (eat('}')) break;
      return fail(error, "expected ',' or '}' in the header");
    }
    // numpy pads the header with spaces and ends it with '\n'; nothing else may follow.
    skip_ws();
    if (p_ != end_) return fail(error, "unexpected text after the header dict");
    if (!have_descr) return fail(error, "header lacks 'descr'");
    if (!have_order) return fail(error, "header lacks 'fortran_order'");
    if (!have_shape) return fail(error, "header lacks 'shape'");
    return true;
  }

 private:
  static bool fail(std::string* error, const std::string& why) {
    *error = why;
    return false;
  }
  void skip_ws() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool eat(char c) {
    if (p_ != end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  bool eat_word(const char* w) {
    const size_t n = std::strlen(w);
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, w, n) != 0) return false;
    p_ += n;
    return true;
  }
  bool parse_string(std::string* out) {
    if (p_ == end_ || (*p_ != '\'' && *p_ != '"')) return false;
    const char quote = *p_++;
    const char* start = p_;
    while (p_ != end_ && *p_ != quote) {
      if (*p_ == '\\') return false;  // numpy never escapes; refuse rather than misparse
      ++p_;
    }
    if (p_ == end_) return false;
    out->assign(start, p_);
    ++p_;
    return true;
  }
  bool parse_bool(bool* out) {
    if (eat_word("True")) {
      *out = true;
      return true;
    }
    if (eat_word("False")) {
      *out = false;
      return true;
    }
    return false;
  }
  bool parse_shape(std::vector<int64_t>* shape, std::string* why) {
    shape->clear();
    if (!eat('(')) {
      *why = "not a tuple";
      return false;
    }
    for (;;) {
      skip_ws();
      if (eat(')')) return true;
      if (p_ != end_ && *p_ == '-') {
        *why = "negative dimension";
        return false;
      }
      if (p_ == end_ || *p_ < '0' || *p_ > '9') {
        *why = "expected a non-negative integer";
        return false;
      }
      int64_t v = 0;
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9') {
        const int digit = *p_ - '0';
        if (v > (std::numeric_limits<int64_t>::max() - digit) / 10) {
          *why = "dimension overflows int64";
          return false;
        }
        v = v * 10 + digit;
        ++p_;
      }
      eat('L');  // Python 2 long literal
      if (shape->size() == kMaxRank) {
        *why = "more than " + std::to_string(kMaxRank) + " dimensions";
        return false;
      }
      shape->push_back(v);
      skip_ws();
      if (eat(',')) continue;
      skip_ws();
      if (eat(')')) return true;
      *why = "expected ',' or ')'";
      return false;
    }
  }

  const char* p_;
  const char* end_;
};

// The preamble and header of a format 1.0 '<f4' C-order file of `shape`:
// padded with spaces and ended with '\n' so that the data starts at a
// multiple of 64 bytes, as numpy does, and at `min_bytes` or later. Empty
// when it would not fit format 1.0's 16-bit header length.
inline std::string header_bytes(const std::vector<int64_t>& shape, size_t min_bytes = 0) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_string(shape) + ", }";
  size_t total = 10 + header.size() + 1;
  total = (total + 63) / 64 * 64;
  if (total < min_bytes) total = min_bytes;
  header.append(total - 10 - header.size() - 1, ' ');
  header.push_back('\n');
  if (header.size() > 0xFFFF) return std::string();
  std::string out(reinterpret_cast<const char*>(kMagic), sizeof(kMagic));
  out.push_back(char(1));
  out.push_back(char(0));
  out.push_back(char(header.size() & 0xFF));
  out.push_back(char(header.size() >> 8));
  return out + header;
}

// The element count of `shape` when an .npy file's data after the header
// (`payload` bytes) holds exactly that many float32 values; else an error
// naming `name` (a shape whose size overflows, missing or extra bytes).
inline Status check_payload(const std::string& name, const std::vector<int64_t>& shape, size_t payload,
                            size_t* count) {
  if (!element_count(shape, count))
    return corrupt(name + ": absurd shape " + shape_string(shape) + " (size overflows)");
  const size_t needed = *count * sizeof(float);
  if (payload < needed)
    return corrupt(name + ": truncated data (shape " + shape_string(shape) + " needs " + std::to_string(needed) +
                   " bytes, file has " + std::to_string(payload) + ")");
  if (payload > needed)
    return corrupt(name + ": data size mismatch (shape " + shape_string(shape) + " needs " +
                   std::to_string(needed) + " bytes, file has " + std::to_string(payload) + ")");
  return Status::Ok();
}

}  // namespace npy_detail

// Parses the preamble and header of an .npy file held in `data` (the whole
// file or at least its header): the shape of its float32 C-order array and
// where the data starts. `name` labels error messages.
inline Status read_npy_header(const uint8_t* data, size_t size, const std::string& name,
                              std::vector<int64_t>* shape_out, size_t* data_offset) {
  using namespace npy_detail;
  if (data == nullptr && size != 0) return invalid_argument(name + ": null data pointer");
  if (size < sizeof(kMagic) || std::memcmp(data, kMagic, sizeof(kMagic)) != 0)
    return corrupt(name + ": not an .npy file (bad magic)");
  if (size < 8) return corrupt(name + ": truncated .npy header (no version)");
  const int major = data[6], minor = data[7];
  size_t len_bytes = 0;
  if (major == 1 && minor == 0) {
    len_bytes = 2;
  } else if ((major == 2 || major == 3) && minor == 0) {
    len_bytes = 4;
  } else {
    return unsupported(name + ": .npy format version " + std::to_string(major) + "." +
                       std::to_string(minor) + " is not supported (1.0, 2.0, 3.0 are)");
  }
  const size_t prefix = 8 + len_bytes;
  if (size < prefix) return corrupt(name + ": truncated .npy header (no header length)");
  size_t header_len = 0;  // at most 4 bytes, so size_t holds it even on 32-bit targets
  for (size_t i = 0; i < len_bytes; ++i) header_len |= size_t(data[8 + i]) << (8 * i);
  if (header_len > size - prefix)
    return corrupt(name + ": truncated .npy header (header says " + std::to_string(header_len) +
                   " bytes, file has " + std::to_string(size - prefix) + " after the preamble)");

  const char* h = reinterpret_cast<const char*>(data + prefix);
  std::string descr, error;
  bool fortran_order = false;
  std::vector<int64_t> shape;
  HeaderParser parser(h, h + header_len);
  if (!parser.parse(&descr, &fortran_order, &shape, &error))
    return corrupt(name + ": bad .npy header: " + printable(error));  // it may quote the header

  if (descr != "<f4") {
    if (descr == ">f4")
      return unsupported(name + ": dtype '>f4' (big-endian float32) is not supported; save as '<f4'");
    return unsupported(name + ": dtype '" + printable(descr) + "' is not supported (featx reads float32 '<f4' only)");
  }
  if (fortran_order)
    return unsupported(name + ": fortran_order=True is not supported (save a C-contiguous array)");
  *shape_out = std::move(shape);
  if (data_offset) *data_offset = prefix + header_len;
  return Status::Ok();
}

// Parses an in-memory .npy file. `name` labels error messages (a path or a
// description such as "<embedded golden>").
inline Status read_npy_memory(const uint8_t* data, size_t size, const std::string& name,
                              NpyArray* out) {
  using namespace npy_detail;
  out->shape.clear();
  out->data.clear();
  std::vector<int64_t> shape;
  size_t data_at = 0;
  FEATX_RETURN_IF_ERROR(read_npy_header(data, size, name, &shape, &data_at));
  size_t count = 0;
  FEATX_RETURN_IF_ERROR(npy_detail::check_payload(name, shape, size - data_at, &count));
  const size_t needed = count * sizeof(float);  // check_payload: it fits

  out->shape = std::move(shape);
  out->data.resize(count);
  const uint8_t* src = data + data_at;
  if (count > 0) std::memcpy(out->data.data(), src, needed);
  if (!host_is_little_endian()) {
    for (float& v : out->data) {
      uint8_t b[4];
      std::memcpy(b, &v, 4);
      const uint8_t swapped[4] = {b[3], b[2], b[1], b[0]};
      std::memcpy(&v, swapped, 4);
    }
  }
  return Status::Ok();
}

inline Status read_npy(const std::string& path, NpyArray* out) {
  out->shape.clear();
  out->data.clear();
  std::vector<uint8_t> bytes;
  FEATX_RETURN_IF_ERROR(read_file(path, &bytes));
  if (bytes.empty()) return corrupt(path + ": empty file (not an .npy file)");
  return read_npy_memory(bytes.data(), bytes.size(), path, out);
}

// Writes a format 1.0 '<f4' C-order file. `data` holds product(shape)
// values (may be null only when that product is 0). Written to PATH.part and
// renamed: the final name never holds a partial file.
inline Status write_npy(const std::string& path, const std::vector<int64_t>& shape,
                        const float* data) {
  using namespace npy_detail;
  if (shape.size() > kMaxRank)
    return invalid_argument(path + ": cannot write an array of rank " + std::to_string(shape.size()));
  size_t count = 0;
  if (!element_count(shape, &count))
    return invalid_argument(path + ": cannot write shape " + shape_string(shape) +
                            " (negative or overflowing size)");
  if (count > 0 && data == nullptr) return invalid_argument(path + ": null data pointer");

  const std::string header = header_bytes(shape);
  if (header.empty()) return invalid_argument(path + ": header too long for .npy format 1.0");

  detail::SizeCheck size;  // element_count: the data's bytes fit; with the header they might not
  const size_t data_bytes = count * sizeof(float);
  const size_t total = size.add(header.size(), data_bytes);
  if (size.overflow) return invalid_argument(path + ": shape " + shape_string(shape) + " is too large to write");
  std::vector<uint8_t> bytes;
  bytes.reserve(total);
  bytes.insert(bytes.end(), header.begin(), header.end());
  const size_t data_at = bytes.size();
  bytes.resize(total);
  if (count > 0) std::memcpy(bytes.data() + data_at, data, data_bytes);
  if (!host_is_little_endian()) {
    for (size_t i = data_at; i + 4 <= bytes.size(); i += 4) {
      std::swap(bytes[i], bytes[i + 3]);
      std::swap(bytes[i + 1], bytes[i + 2]);
    }
  }

  return detail::write_file(path, bytes.data(), bytes.size());
}

}  // namespace featx
