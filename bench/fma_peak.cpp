// fma_peak: single-core fp32 FMA throughput (GFLOP/s) with AVX-512 and AVX2,
// the ceiling against which the benchmark states featx's batch-8 throughput.
//
//   fma_peak [--ms 300]
//
// Each loop keeps 12 independent accumulators, more than FMA latency (4
// cycles) x FMA ports (up to 2) needs, so the loop is throughput-bound, not
// latency-bound. One FMA = 2 flops per lane. The kernels carry `target`
// attributes and run only when the CPU reports the ISA, so the file builds
// with plain -O2 (no -march) like featx itself. Prints lines
//   fma_avx512_gflops <x>   fma_avx2_gflops <x>
// (the best of several timed repetitions, to step over noise).
#include <immintrin.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

constexpr int kAcc = 12;
constexpr long kInner = 1 << 16;  // iterations between clock reads

// Returns the sum of the accumulators so the compiler cannot drop the work.
__attribute__((target("avx512f"), noinline)) float run_avx512(long iters) {
  __m512 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_set1_ps(0.001f * float(i));
  // a < 1 and b small keep the values finite for any iteration count.
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
  for (long n = 0; n < iters; ++n) {
    // Fully unrolled so the accumulators live in registers, not in memory.
#pragma GCC unroll 12
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < kAcc; ++i) s = _mm512_add_ps(s, acc[i]);
  float out[16];
  _mm512_storeu_ps(out, s);
  float t = 0;
  for (float v : out) t += v;
  return t;
}

__attribute__((target("avx2,fma"), noinline)) float run_avx2(long iters) {
  __m256 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm256_set1_ps(0.001f * float(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
  for (long n = 0; n < iters; ++n) {
#pragma GCC unroll 12
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 s = acc[0];
  for (int i = 1; i < kAcc; ++i) s = _mm256_add_ps(s, acc[i]);
  float out[8];
  _mm256_storeu_ps(out, s);
  float t = 0;
  for (float v : out) t += v;
  return t;
}

// Best GFLOP/s over `reps` repetitions of ~ms/reps milliseconds each.
template <class F>
double measure(F fn, int lanes, double ms, int reps, float* sink) {
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    long iters = 0;
    const auto t0 = std::chrono::steady_clock::now();
    double el = 0;
    do {
      *sink += fn(kInner);
      iters += kInner;
      el = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    } while (el < ms / reps);
    const double gflops = 2.0 * lanes * kAcc * double(iters) / (el * 1e6);
    if (gflops > best) best = gflops;
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  double ms = 300;
  if (argc == 3 && std::strcmp(argv[1], "--ms") == 0) ms = std::atof(argv[2]);
  float sink = 0;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f"))
    std::printf("fma_avx512_gflops %.1f\n", measure(run_avx512, 16, ms, 6, &sink));
  else
    std::printf("fma_avx512_gflops n/a\n");
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    std::printf("fma_avx2_gflops %.1f\n", measure(run_avx2, 8, ms, 6, &sink));
  else
    std::printf("fma_avx2_gflops n/a\n");
  std::fprintf(stderr, "(checksum %g)\n", double(sink));
  return 0;
}
