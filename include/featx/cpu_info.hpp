// featx/cpu_info.hpp: which CPU this is and how large its caches are, read
// once at run time so one binary sizes its blocks for the machine it lands on.
//
// x86: vendor, family and model from cpuid leaves 0 and 1 (the family and
// model with their extended fields, as /proc/cpuinfo prints them), the brand
// string from 0x80000002-4, caches from the deterministic cache leaf (4 on
// Intel, 0x8000001D on AMD; the older 0x80000005-6 when a hypervisor hides
// them). Elsewhere (ARM, RISC-V) caches come from
// /sys/devices/system/cpu/cpu0/cache. A cache shared by several cores counts
// as its share per core: its size x the threads sharing L1d / the threads
// sharing it (SMT siblings share both, so a private L2 keeps its full size;
// 4 E-cores sharing one L2 get a quarter each). When nothing answers (some
// VMs hide both), the caches are 0 and the tuning (tuning.hpp) uses its
// defaults, saying so.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "featx/kernels/isa.hpp"

namespace featx {

struct CpuInfo {
  std::string vendor;  // "GenuineIntel", "AuthenticAMD"; "" off x86
  std::string brand;   // the brand string ("AMD EPYC 9R45 ..."), or "" when the CPU has none
  int family = 0, model = 0;
  size_t l1d_bytes = 0, l2_bytes = 0;  // per core (see above); 0: unknown
  size_t l3_bytes = 0;                 // the whole L3 as reported (shared); 0: unknown
  std::string cache_source;  // where the sizes came from
};

namespace detail {

// One entry of cpuid's deterministic cache leaf (4 or 0x8000001D; the same
// layout): level, type (1 data, 2 instruction, 3 unified) and bytes.
struct CacheLeaf {
  int type = 0, level = 0;
  size_t bytes = 0;
  int sharing_threads = 1;
};

inline CacheLeaf decode_cache_leaf(uint32_t eax, uint32_t ebx, uint32_t ecx) {
  CacheLeaf c;
  c.type = int(eax & 0x1F);
  c.level = int((eax >> 5) & 0x7);
  c.sharing_threads = int((eax >> 14) & 0xFFF) + 1;
  const size_t ways = ((ebx >> 22) & 0x3FF) + 1, partitions = ((ebx >> 12) & 0x3FF) + 1;
  const size_t line = (ebx & 0xFFF) + 1, sets = size_t(ecx) + 1;
  c.bytes = ways * partitions * line * sets;
  return c;
}

// The microarchitectures featx has been measured on or is likely to meet
// (cloud x86 VMs), from vendor, family and model; "" when not listed.
inline const char* microarchitecture_name(const std::string& vendor, int family, int model) {
  struct Range {
    const char* vendor;
    int family, first, last;
    const char* name;
  };
  static const Range ranges[] = {
      {"GenuineIntel", 6, 0x3F, 0x3F, "Haswell"},
      {"GenuineIntel", 6, 0x4F, 0x4F, "Broadwell"},
      {"GenuineIntel", 6, 0x55, 0x55, "Skylake-SP / Cascade Lake"},
      {"GenuineIntel", 6, 0x6A, 0x6C, "Ice Lake-SP"},
      {"GenuineIntel", 6, 0x8F, 0x8F, "Sapphire Rapids"},
      {"GenuineIntel", 6, 0xCF, 0xCF, "Emerald Rapids"},
      {"GenuineIntel", 6, 0xAD, 0xAE, "Granite Rapids"},
      {"AuthenticAMD", 23, 0x00, 0x2F, "Zen / Zen+"},
      {"AuthenticAMD", 23, 0x30, 0xFF, "Zen 2"},
      {"AuthenticAMD", 25, 0x00, 0x0F, "Zen 3"},
      {"AuthenticAMD", 25, 0x10, 0x1F, "Zen 4"},
      {"AuthenticAMD", 25, 0x20, 0x5F, "Zen 3"},
      {"AuthenticAMD", 25, 0x60, 0xAF, "Zen 4"},
      {"AuthenticAMD", 26, 0x00, 0xFF, "Zen 5"},
  };
  for (const Range& r : ranges)
    if (vendor == r.vendor && family == r.family && model >= r.first && model <= r.last) return r.name;
  return "";
}

// Size of a sysfs cache entry ("48K", "1024K", "32M"); 0 when unreadable.
inline size_t read_sysfs_size(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return 0;
  unsigned long long n = 0;
  char unit = 0;
  const int got = std::fscanf(f, "%llu%c", &n, &unit);
  std::fclose(f);
  if (got < 1 || n > (1ull << 40)) return 0;
  if (unit == 'K') n <<= 10;
  else if (unit == 'M') n <<= 20;
  return size_t(n);
}

inline std::string read_sysfs_line(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return "";
  char buf[256] = {0};
  const bool ok = std::fgets(buf, sizeof buf, f) != nullptr;
  std::fclose(f);
  if (!ok) return "";
  std::string s(buf);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// CPUs in a sysfs list such as "0-3,8".
inline int count_cpu_list(const std::string& list) {
  int count = 0;
  const char* p = list.c_str();
  while (*p) {
    char* end = nullptr;
    const long first = std::strtol(p, &end, 10);
    if (end == p) break;
    long last = first;
    p = end;
    if (*p == '-') {
      last = std::strtol(p + 1, &end, 10);
      if (end == p + 1) break;
      p = end;
    }
    if (last >= first && last - first < 65536) count += int(last - first + 1);
    if (*p == ',') ++p;
  }
  return count;
}

// Per-core sizes from a list of caches (see the top of the file).
template <typename Leaves>
inline void assign_cache_sizes(const Leaves& leaves, CpuInfo* info) {
  int l1d_sharing = 1;
  for (const CacheLeaf& c : leaves)
    if (c.level == 1 && (c.type == 1 || c.type == 3)) l1d_sharing = c.sharing_threads;
  for (const CacheLeaf& c : leaves) {
    if (c.type != 1 && c.type != 3) continue;  // instruction caches do not hold our data
    const int sharing = c.sharing_threads > 0 ? c.sharing_threads : 1;
    const size_t per_core = sharing > l1d_sharing ? c.bytes / size_t(sharing) * size_t(l1d_sharing) : c.bytes;
    if (c.level == 1) info->l1d_bytes = per_core;
    else if (c.level == 2) info->l2_bytes = per_core;
    else if (c.level == 3) info->l3_bytes = c.bytes;  // shared anyway: the whole of it
  }
}

struct CacheLeaves {
  CacheLeaf entries[16];
  int count = 0;
  const CacheLeaf* begin() const { return entries; }
  const CacheLeaf* end() const { return entries + count; }
  void push(const CacheLeaf& c) {
    if (count < 16) entries[count++] = c;
  }
};

inline bool read_sysfs_caches(CpuInfo* info) {
  CacheLeaves leaves;
  for (int i = 0; i < 16; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    const std::string type = read_sysfs_line(dir + "type");
    if (type.empty()) break;
    CacheLeaf c;
    c.type = type == "Data" ? 1 : type == "Instruction" ? 2 : type == "Unified" ? 3 : 0;
    c.level = std::atoi(read_sysfs_line(dir + "level").c_str());
    c.bytes = read_sysfs_size(dir + "size");
    c.sharing_threads = count_cpu_list(read_sysfs_line(dir + "shared_cpu_list"));
    if (c.bytes) leaves.push(c);
  }
  if (leaves.count == 0) return false;
  assign_cache_sizes(leaves, info);
  info->cache_source = "/sys/devices/system/cpu/cpu0/cache";
  return info->l2_bytes != 0;
}

#ifdef FEATX_HAVE_X86_SIMD
inline void read_x86_identity(CpuInfo* info) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return;
  char vendor[13] = {0};
  std::memcpy(vendor, &b, 4);
  std::memcpy(vendor + 4, &d, 4);
  std::memcpy(vendor + 8, &c, 4);
  info->vendor = vendor;
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    const int base_family = int((a >> 8) & 0xF), base_model = int((a >> 4) & 0xF);
    info->family = base_family == 0xF ? base_family + int((a >> 20) & 0xFF) : base_family;
    info->model = (base_family == 0x6 || base_family == 0xF) ? (int((a >> 16) & 0xF) << 4) | base_model : base_model;
  }
  unsigned max_ext = 0;
  __get_cpuid(0x80000000u, &max_ext, &b, &c, &d);
  if (max_ext >= 0x80000004u) {
    char brand[49] = {0};
    for (unsigned i = 0; i < 3; ++i) {
      unsigned r[4];
      __get_cpuid(0x80000002u + i, &r[0], &r[1], &r[2], &r[3]);
      std::memcpy(brand + 16 * i, r, 16);
    }
    std::string s(brand);
    const size_t first = s.find_first_not_of(' '), last = s.find_last_not_of(' ');
    info->brand = first == std::string::npos ? "" : s.substr(first, last - first + 1);
  }
}

inline bool read_x86_caches(CpuInfo* info) {
  unsigned leaf = 4;
  if (info->vendor == "AuthenticAMD" || info->vendor == "HygonGenuine") {
    unsigned max_ext = 0, b, c, d;
    __get_cpuid(0x80000000u, &max_ext, &b, &c, &d);
    if (max_ext < 0x8000001Du) return false;
    leaf = 0x8000001Du;
  }
  CacheLeaves leaves;
  for (unsigned i = 0; i < 16; ++i) {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(leaf, i, &a, &b, &c, &d)) break;
    const CacheLeaf entry = decode_cache_leaf(a, b, c);
    if (entry.type == 0) break;
    leaves.push(entry);
  }
  if (leaves.count == 0) return false;
  assign_cache_sizes(leaves, info);
  info->cache_source = leaf == 4 ? "cpuid leaf 4" : "cpuid leaf 0x8000001D";
  return info->l2_bytes != 0;
}

// The older descriptors, for hypervisors that hide the leaves above (AMD
// without TOPOEXT): 0x80000006 ECX[31:16] is L2 in KiB on both vendors,
// EDX[31:18] L3 in 512 KiB units and 0x80000005 ECX[31:24] L1d in KiB on AMD.
inline bool read_x86_legacy_caches(CpuInfo* info) {
  unsigned max_ext = 0, a, b, c, d;
  __get_cpuid(0x80000000u, &max_ext, &b, &c, &d);
  if (max_ext < 0x80000006u) return false;
  __get_cpuid(0x80000006u, &a, &b, &c, &d);
  info->l2_bytes = size_t(c >> 16) << 10;
  if (info->vendor == "AuthenticAMD" || info->vendor == "HygonGenuine") {
    info->l3_bytes = size_t(d >> 18) << 19;
    __get_cpuid(0x80000005u, &a, &b, &c, &d);
    info->l1d_bytes = size_t(c >> 24) << 10;
  }
  info->cache_source = "cpuid leaves 0x80000005-6";
  return info->l2_bytes != 0;
}
#endif

inline CpuInfo read_cpu_info() {
  CpuInfo info;
#ifdef FEATX_HAVE_X86_SIMD
  read_x86_identity(&info);
  if (read_x86_caches(&info)) return info;
  info.l1d_bytes = info.l2_bytes = info.l3_bytes = 0;
  if (read_x86_legacy_caches(&info)) return info;
  info.l1d_bytes = info.l2_bytes = info.l3_bytes = 0;
#endif
  if (!read_sysfs_caches(&info)) {
    info.l1d_bytes = info.l2_bytes = info.l3_bytes = 0;
    info.cache_source = "unknown (neither cpuid nor sysfs answered)";
  }
  return info;
}

}  // namespace detail

// This CPU, read once (thread-safe).
inline const CpuInfo& cpu_info() {
  static const CpuInfo info = detail::read_cpu_info();
  return info;
}

// "Zen 5 (AuthenticAMD family 26 model 2)"; the architecture name off x86.
inline std::string microarchitecture(const CpuInfo& cpu) {
  if (cpu.vendor.empty()) {
#if defined(__aarch64__)
    return "aarch64";
#elif defined(__arm__)
    return "arm";
#elif defined(__riscv)
    return "riscv";
#else
    return "unknown";
#endif
  }
  const char* name = detail::microarchitecture_name(cpu.vendor, cpu.family, cpu.model);
  return std::string(*name ? name : "unknown") + " (" + cpu.vendor + " family " + std::to_string(cpu.family) +
         " model " + std::to_string(cpu.model) + ")";
}

}  // namespace featx
