// featx/detail/little_endian.hpp: fixed-width integers and doubles read and
// written byte by byte in little-endian order, whatever the host's: the
// layout of featx's small binary files (.pca, .fxp, .fxi headers).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace featx {
namespace detail {

inline uint32_t get_u32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
inline uint64_t get_u64(const uint8_t* p) { return uint64_t(get_u32(p)) | uint64_t(get_u32(p + 4)) << 32; }
inline double get_f64(const uint8_t* p) {
  const uint64_t u = get_u64(p);
  double v = 0;
  std::memcpy(&v, &u, 8);
  return v;
}

// Into a buffer the caller sized.
inline void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}
inline void put_u64(uint8_t* p, uint64_t v) {
  put_u32(p, uint32_t(v));
  put_u32(p + 4, uint32_t(v >> 32));
}

// Appended to a growing file image.
inline void put_u32(std::vector<uint8_t>* b, uint32_t v) {
  b->resize(b->size() + 4);
  put_u32(b->data() + b->size() - 4, v);
}
inline void put_u64(std::vector<uint8_t>* b, uint64_t v) {
  b->resize(b->size() + 8);
  put_u64(b->data() + b->size() - 8, v);
}
inline void put_f64(std::vector<uint8_t>* b, double v) {
  uint64_t u = 0;
  std::memcpy(&u, &v, 8);
  put_u64(b, u);
}

}  // namespace detail
}  // namespace featx
