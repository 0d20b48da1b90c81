// featx/tuning.hpp: the block sizes a plan takes from the L2 cache of the
// CPU it runs on (cpu_info.hpp), so a 2 MiB-L2 Xeon and a 512 KiB-L2 ARM
// core each keep their working sets in cache from one binary.
//
// Two sizes follow L2; both were tuned at 1 MiB (docs/PERFORMANCE.md) and
// scale with it:
//   - a 1x1 conv on one thread walks its pixels in blocks whose inputs fill
//     half of L2, the rest for the weight panels streaming past;
//   - a fused inverted-residual block (step_plan.hpp) runs in bands of
//     expanded rows of 5/16 of L2, beside the depthwise band and the
//     project weights.
// Neither changes a value: every output is the same FMA chain whichever
// block or band computes it (tested across L2 sizes), so results stay
// bit-identical from machine to machine of the same ISA.
//
// FEATX_L2_BYTES=N (a byte count, or with a K or M suffix) in the
// environment overrides the detected size, for tests and tuning runs, as
// PlanOptions::l2_bytes does per plan.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <string>

#include "featx/cpu_info.hpp"

namespace featx {

// Used when the CPU does not say (the size the constants were tuned at).
constexpr size_t kDefaultL2Bytes = size_t(1) << 20;
// Sizes outside this range are clamped: below 128 KiB a band would not hold
// a 3x3 window of the wide rows; above 4 MiB (a shared L2, Apple's 16 MiB)
// larger blocks gain nothing and would stop threads sharing bands.
constexpr size_t kMinTunedL2Bytes = size_t(128) << 10, kMaxTunedL2Bytes = size_t(4) << 20;

struct CacheTuning {
  size_t l2_bytes = kDefaultL2Bytes;  // what the sizes below follow (after clamping)
  std::string l2_source = "default";  // where it came from
  size_t pointwise_block_bytes = kDefaultL2Bytes / 2;
  size_t fused_band_bytes = kDefaultL2Bytes / 16 * 5;
};

namespace detail {

// "1048576", "1024K", "1M" -> bytes; 0 when not a size.
inline size_t parse_byte_size(const char* s) {
  if (!s || *s < '0' || *s > '9') return 0;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(s, &end, 10);
  if (n == 0 || n > (1ull << 40)) return 0;
  unsigned long long scale = 1;
  if (*end == 'K' || *end == 'k') scale = 1ull << 10, ++end;
  else if (*end == 'M' || *end == 'm') scale = 1ull << 20, ++end;
  if (*end) return 0;
  return size_t(n * scale);
}

}  // namespace detail

// The sizes for an L2 of `l2_bytes` per core (0: FEATX_L2_BYTES when set,
// else this CPU's, else kDefaultL2Bytes).
inline CacheTuning cache_tuning(size_t l2_bytes = 0) {
  CacheTuning t;
  if (l2_bytes) {
    t.l2_source = "PlanOptions::l2_bytes";
  } else if (const size_t env = detail::parse_byte_size(std::getenv("FEATX_L2_BYTES"))) {
    l2_bytes = env;
    t.l2_source = "FEATX_L2_BYTES";
  } else if (cpu_info().l2_bytes) {
    l2_bytes = cpu_info().l2_bytes;
    t.l2_source = cpu_info().cache_source;
  } else {
    l2_bytes = kDefaultL2Bytes;
    t.l2_source = "default (the CPU does not report its caches)";
  }
  t.l2_bytes = l2_bytes < kMinTunedL2Bytes ? kMinTunedL2Bytes : l2_bytes > kMaxTunedL2Bytes ? kMaxTunedL2Bytes : l2_bytes;
  t.pointwise_block_bytes = t.l2_bytes / 2;
  t.fused_band_bytes = t.l2_bytes / 16 * 5;
  return t;
}

}  // namespace featx
