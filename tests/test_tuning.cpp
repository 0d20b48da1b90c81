// The CPU reading (cpu_info.hpp) and the cache tuning taken from it
// (tuning.hpp): the cpuid and sysfs decoders on known values, and the sizes
// that follow L2, clamped. No model: tests/cross_test.sh runs this file
// under qemu too. That the tuning never changes a value is in
// test_golden.cpp ("plans tuned for different L2 sizes ...").
#include <algorithm>
#include <cstdlib>
#include <string>

#include "doctest/doctest.h"
#include "featx/cpu_info.hpp"
#include "featx/tuning.hpp"

namespace {
// One cpuid leaf-4 entry: type, level, threads sharing it, ways, line, sets.
featx::detail::CacheLeaf leaf(int type, int level, int sharing, unsigned ways, unsigned line, unsigned sets) {
  const uint32_t eax = uint32_t(type) | (uint32_t(level) << 5) | (uint32_t(sharing - 1) << 14);
  const uint32_t ebx = ((ways - 1) << 22) | (line - 1);
  return featx::detail::decode_cache_leaf(eax, ebx, sets - 1);
}

struct ScopedEnv {
  std::string name;
  explicit ScopedEnv(const char* n, const char* value) : name(n) { setenv(n, value, 1); }
  ~ScopedEnv() { unsetenv(name.c_str()); }
};
}  // namespace

TEST_CASE("cpuid's deterministic cache leaf decodes to level, type and bytes") {
  // Sapphire Rapids' L2: 16 ways x 64-byte lines x 2048 sets, 2 SMT threads.
  const featx::detail::CacheLeaf l2 = leaf(3, 2, 2, 16, 64, 2048);
  CHECK(l2.type == 3);
  CHECK(l2.level == 2);
  CHECK(l2.sharing_threads == 2);
  CHECK(l2.bytes == size_t(2) << 20);
  // Zen 4's L1d: 8 ways x 64 x 64 sets = 32 KiB.
  CHECK(leaf(1, 1, 2, 8, 64, 64).bytes == size_t(32) << 10);
}

TEST_CASE("a cache shared by cores counts as its share per core, SMT siblings share a core's") {
  featx::detail::CacheLeaves smt;  // a private L2 under 2 SMT threads keeps its size
  smt.push(leaf(1, 1, 2, 12, 64, 64));
  smt.push(leaf(2, 1, 2, 8, 64, 64));  // the instruction cache is not counted
  smt.push(leaf(3, 2, 2, 16, 64, 1024));
  smt.push(leaf(3, 3, 64, 16, 64, 32768));
  featx::CpuInfo a;
  featx::detail::assign_cache_sizes(smt, &a);
  CHECK(a.l1d_bytes == size_t(48) << 10);
  CHECK(a.l2_bytes == size_t(1) << 20);
  CHECK(a.l3_bytes == size_t(32) << 20);  // L3 is reported whole

  featx::detail::CacheLeaves cluster;  // 4 E-cores, no SMT, sharing a 4 MiB L2
  cluster.push(leaf(1, 1, 1, 8, 64, 64));
  cluster.push(leaf(3, 2, 4, 16, 64, 4096));
  featx::CpuInfo b;
  featx::detail::assign_cache_sizes(cluster, &b);
  CHECK(b.l2_bytes == size_t(1) << 20);
}

TEST_CASE("sysfs CPU lists are counted") {
  CHECK(featx::detail::count_cpu_list("0") == 1);
  CHECK(featx::detail::count_cpu_list("0-3,8") == 5);
  CHECK(featx::detail::count_cpu_list("0,2,4-5") == 4);
  CHECK(featx::detail::count_cpu_list("") == 0);
  CHECK(featx::detail::count_cpu_list("garbage") == 0);
}

TEST_CASE("byte sizes parse with K and M suffixes, anything else is no size") {
  CHECK(featx::detail::parse_byte_size("1048576") == size_t(1) << 20);
  CHECK(featx::detail::parse_byte_size("512K") == size_t(512) << 10);
  CHECK(featx::detail::parse_byte_size("2M") == size_t(2) << 20);
  CHECK(featx::detail::parse_byte_size("2m") == size_t(2) << 20);
  for (const char* bad : {"", "0", "-1", "1G", "12KB", " 1M", "M", "99999999999999"})
    CHECK_MESSAGE(featx::detail::parse_byte_size(bad) == 0, bad);
  CHECK(featx::detail::parse_byte_size(nullptr) == 0);
}

TEST_CASE("the tuning follows L2 (half for 1x1 blocks, 5/16 for bands), clamped to 128 KiB - 4 MiB") {
  const featx::CacheTuning at1m = featx::cache_tuning(size_t(1) << 20);
  CHECK(at1m.l2_source == "PlanOptions::l2_bytes");
  CHECK(at1m.pointwise_block_bytes == 512u << 10);  // the constants tuned on 1 MiB L2s
  CHECK(at1m.fused_band_bytes == 320u << 10);
  const featx::CacheTuning at2m = featx::cache_tuning(size_t(2) << 20);
  CHECK(at2m.pointwise_block_bytes == size_t(1) << 20);
  CHECK(at2m.fused_band_bytes == 640u << 10);
  CHECK(featx::cache_tuning(size_t(16) << 10).l2_bytes == featx::kMinTunedL2Bytes);
  CHECK(featx::cache_tuning(size_t(64) << 20).l2_bytes == featx::kMaxTunedL2Bytes);
  CHECK(featx::cache_tuning(size_t(64) << 20).fused_band_bytes == featx::kMaxTunedL2Bytes / 16 * 5);
}

TEST_CASE("FEATX_L2_BYTES overrides the CPU's L2; a value that is no size is ignored") {
  {
    ScopedEnv env("FEATX_L2_BYTES", "512K");
    const featx::CacheTuning t = featx::cache_tuning();
    CHECK(t.l2_source == "FEATX_L2_BYTES");
    CHECK(t.l2_bytes == 512u << 10);
    CHECK(featx::cache_tuning(size_t(2) << 20).l2_bytes == size_t(2) << 20);  // a plan's own size wins
  }
  {
    ScopedEnv env("FEATX_L2_BYTES", "lots");
    const featx::CacheTuning t = featx::cache_tuning();
    CHECK(t.l2_source != "FEATX_L2_BYTES");
    const size_t detected = featx::cpu_info().l2_bytes;
    if (detected)
      CHECK(t.l2_bytes == std::min(std::max(detected, featx::kMinTunedL2Bytes), featx::kMaxTunedL2Bytes));
    else
      CHECK(t.l2_bytes == featx::kDefaultL2Bytes);
  }
}

TEST_CASE("this CPU reads as something, and its microarchitecture line names vendor, family and model") {
  const featx::CpuInfo& cpu = featx::cpu_info();
  MESSAGE("cpu: " << cpu.brand << "; " << featx::microarchitecture(cpu) << "; L1d " << cpu.l1d_bytes << " L2 "
                  << cpu.l2_bytes << " L3 " << cpu.l3_bytes << " (" << cpu.cache_source << ")");
  CHECK(!cpu.cache_source.empty());
  if (cpu.l2_bytes) CHECK(cpu.l2_bytes >= size_t(64) << 10);  // no CPU featx meets has less
  if (!cpu.vendor.empty()) {
    CHECK(cpu.family > 0);
    CHECK(featx::microarchitecture(cpu).find(cpu.vendor + " family " + std::to_string(cpu.family)) !=
          std::string::npos);
  }
  CHECK(std::string(featx::detail::microarchitecture_name("AuthenticAMD", 26, 2)) == "Zen 5");
  CHECK(std::string(featx::detail::microarchitecture_name("AuthenticAMD", 25, 0x11)) == "Zen 4");
  CHECK(std::string(featx::detail::microarchitecture_name("GenuineIntel", 6, 0x8F)) == "Sapphire Rapids");
  CHECK(std::string(featx::detail::microarchitecture_name("GenuineIntel", 6, 0x01)).empty());
}
