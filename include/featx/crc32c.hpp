// featx/crc32c.hpp: CRC-32C (Castagnoli), the checksum of a model's payload.
//
// x86 CPUs with SSE4.2 have a CRC-32C instruction (three interleaved chains,
// about 20 GB/s from cache; the table took 10 ms of a 20 ms load); it is
// chosen at run time like the SIMD kernels. Elsewhere, table-driven
// slicing by 8 (about 1 GB/s). The polynomial is the reflected 0x82F63B78;
// check value of "123456789" is 0xE3069283. Both paths are tested against
// each other.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "featx/kernels/isa.hpp"

namespace featx {
namespace detail {

struct Crc32cTables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  Crc32cTables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : (c >> 1);
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFFu];
  }
};

inline const Crc32cTables& crc32c_tables() {
  static const Crc32cTables tables;
  return tables;
}

}  // namespace detail

// The portable path; crc32c() uses it when the CPU has no CRC instruction.
inline uint32_t crc32c_table(const void* data, size_t size, uint32_t crc = 0) {
  const auto& t = detail::crc32c_tables().t;
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  while (size >= 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);  // memcpy: no alignment or aliasing assumptions
    std::memcpy(&hi, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    lo = __builtin_bswap32(lo);
    hi = __builtin_bswap32(hi);
#endif
    lo ^= crc;
    crc = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
          t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
    p += 8;
    size -= 8;
  }
  while (size--) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xFFu];
  return ~crc;
}

namespace detail {

// a * b mod P for polynomials in the reflected bit order (x^0 is bit 31).
inline uint32_t crc32c_multiply(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t bit = 0x80000000u; bit != 0; bit >>= 1) {
    if (a & bit) product ^= b;
    b = (b & 1u) ? (b >> 1) ^ 0x82F63B78u : b >> 1;  // b *= x
  }
  return product;
}

// x^(8 * bytes) mod P: multiplying a CRC register by it appends `bytes`
// zero bytes, which is how checksums of adjacent blocks combine.
inline uint32_t crc32c_zeros_operator(size_t bytes) {
  uint32_t result = 0x80000000u, power = 0x40000000u;  // x^0, x^1
  for (uint64_t e = uint64_t(bytes) * 8; e != 0; e >>= 1) {
    if (e & 1) result = crc32c_multiply(result, power);
    power = crc32c_multiply(power, power);
  }
  return result;
}

}  // namespace detail

#ifdef FEATX_HAVE_X86_SIMD
// The CRC instruction has a latency of 3 cycles and a throughput of 1, so
// one chain runs at a third of its speed: large inputs run as three
// interleaved chains over adjacent thirds, combined with the zeros operator.
__attribute__((target("sse4.2"))) inline uint32_t crc32c_sse42(const void* data, size_t size,
                                                               uint32_t crc = 0) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t c = ~crc;
  if (size >= 3 * 4096) {
    const size_t third = size / 24 * 8;
    uint64_t c1 = 0, c2 = 0;
    const unsigned char* p1 = p + third;
    const unsigned char* p2 = p + 2 * third;
    for (size_t i = 0; i < third; i += 8) {
      uint64_t v0, v1, v2;
      std::memcpy(&v0, p + i, 8);
      std::memcpy(&v1, p1 + i, 8);
      std::memcpy(&v2, p2 + i, 8);
      c = _mm_crc32_u64(c, v0);
      c1 = _mm_crc32_u64(c1, v1);
      c2 = _mm_crc32_u64(c2, v2);
    }
    const uint32_t shift = detail::crc32c_zeros_operator(third);
    c = detail::crc32c_multiply(detail::crc32c_multiply(uint32_t(c), shift) ^ uint32_t(c1), shift) ^
        uint32_t(c2);
    p += 3 * third;
    size -= 3 * third;
  }
  for (; size >= 8; p += 8, size -= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
  }
  uint32_t c32 = uint32_t(c);
  for (; size > 0; ++p, --size) c32 = _mm_crc32_u8(c32, *p);
  return ~c32;
}

inline bool cpu_has_sse42() {
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2);
}
#endif

// Extends `crc` (0 for a fresh checksum) over `size` bytes.
inline uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0) {
#ifdef FEATX_HAVE_X86_SIMD
  static const bool hardware = cpu_has_sse42();
  if (hardware) return crc32c_sse42(data, size, crc);
#endif
  return crc32c_table(data, size, crc);
}

}  // namespace featx
