// featx/kernels/isa.hpp: which instruction set the kernels use, chosen at run time.
//
// One binary carries every variant the compiler can emit: x86 kernels are
// compiled with per-function `target` attributes (no -march flags needed),
// and the best one the CPU and OS support is chosen when an Extractor is
// made. FEATX_ISA=scalar|avx2|avx512|neon in the environment overrides the
// choice (for tests and benchmarks); asking for an ISA the machine lacks
// falls back to the best available one, and featx says which ran.
//
// Config: FEATX_NO_SIMD compiles the scalar references only.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#if !defined(FEATX_NO_SIMD) && (defined(__x86_64__) || defined(__i386__)) && \
    (defined(__GNUC__) || defined(__clang__))
#define FEATX_HAVE_X86_SIMD 1
#include <cpuid.h>
#include <immintrin.h>
#define FEATX_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define FEATX_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#endif

// NEON on AArch64, and on 32-bit ARM built with NEON and VFPv4's fused
// multiply-add (-mfpu=neon-vfpv4 -mfloat-abi=hard): the kernels are FMA
// chains, and vfmaq_f32 needs VFPv4. The few A64-only intrinsics they use
// have A32 spellings in vector_neon.hpp. Other 32-bit ARM builds, RISC-V
// (no RVV kernels) and the rest run the scalar references. NEON is a
// compile-time choice: a binary built with it needs it to start at all.
#if !defined(FEATX_NO_SIMD) && defined(__ARM_NEON) && \
    (defined(__aarch64__) || defined(__ARM_FEATURE_FMA))
#define FEATX_HAVE_NEON 1
#include <arm_neon.h>
#endif

namespace featx {

enum class Isa { scalar = 0, avx2, avx512, neon };

inline const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::neon: return "neon";
    default: return "scalar";
  }
}

inline bool parse_isa(const std::string& s, Isa* out) {
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon})
    if (s == isa_name(isa)) {
      *out = isa;
      return true;
    }
  return false;
}

namespace detail {

#ifdef FEATX_HAVE_X86_SIMD
// XCR0: which register states the OS saves on context switch.
inline uint64_t read_xcr0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

inline bool x86_supports(Isa isa) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
  if (!osxsave || !avx || !fma) return false;
  const uint64_t xcr0 = read_xcr0();
  if ((xcr0 & 0x6) != 0x6) return false;  // XMM and YMM state
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool avx2 = (b >> 5) & 1;
  if (isa == Isa::avx2) return avx2;
  if (isa == Isa::avx512) {
    const bool f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    return avx2 && f && dq && bw && vl && (xcr0 & 0xE0) == 0xE0;  // opmask, ZMM state
  }
  return false;
}
#endif

}  // namespace detail

inline bool isa_supported(Isa isa) {
  if (isa == Isa::scalar) return true;
#ifdef FEATX_HAVE_X86_SIMD
  if (isa == Isa::avx2 || isa == Isa::avx512) return detail::x86_supports(isa);
#endif
#ifdef FEATX_HAVE_NEON
  if (isa == Isa::neon) return true;
#endif
  return false;
}

inline Isa best_isa() {
  for (Isa isa : {Isa::avx512, Isa::avx2, Isa::neon})
    if (isa_supported(isa)) return isa;
  return Isa::scalar;
}

// The ISA to use: FEATX_ISA if set and supported, else the best one.
inline Isa selected_isa() {
  const char* env = std::getenv("FEATX_ISA");
  Isa wanted;
  if (env && *env && parse_isa(env, &wanted) && isa_supported(wanted)) return wanted;
  return best_isa();
}

}  // namespace featx
