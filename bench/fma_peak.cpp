// fma_peak: fp32 FMA throughput (GFLOP/s) with AVX-512 and AVX2 on one or
// more cores, the ceiling against which the benchmark states featx's batch-8
// throughput.
//
//   fma_peak [--ms 300] [--threads 1] [--isa both|avx512|avx2]
//
// Each loop keeps 12 independent accumulators, more than FMA latency (4
// cycles) x FMA ports (up to 2) needs, so the loop is throughput-bound, not
// latency-bound. One FMA = 2 flops per lane. The kernels carry `target`
// attributes and run only when the CPU reports the ISA, so the file builds
// with plain -O2 (no -march) like featx itself. Prints lines
//   fma_avx512_gflops <x>   fma_avx2_gflops <x>
// (the best of 6 timed repetitions, to step over noise). With --threads N,
// N threads run at once and the rate is their sum: the peak of N cores as
// measured, not N x one core. run_bench.py also uses a short 2-thread run
// as a canary for a slowed host (a busy hyperthread sibling, a lower clock).
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

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

// One thread's GFLOP/s over about `ms` milliseconds.
template <class F>
double rate(F fn, int lanes, double ms, float* sink) {
  long iters = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double el = 0;
  do {
    *sink += fn(kInner);
    iters += kInner;
    el = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  } while (el < ms);
  return 2.0 * lanes * kAcc * double(iters) / (el * 1e6);
}

// Best over `reps` repetitions of the summed rate of `threads` threads
// running at once (each on its own core if the scheduler allows).
template <class F>
double measure(F fn, int lanes, double ms, int reps, int threads, float* sink) {
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    std::vector<double> rates(size_t(threads), 0.0);
    std::vector<float> sinks(size_t(threads), 0.0f);
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t)
      pool.emplace_back([&, t] { rates[size_t(t)] = rate(fn, lanes, ms / reps, &sinks[size_t(t)]); });
    rates[0] = rate(fn, lanes, ms / reps, &sinks[0]);
    for (auto& th : pool) th.join();
    double sum = 0;
    for (size_t t = 0; t < rates.size(); ++t) sum += rates[t], *sink += sinks[t];
    if (sum > best) best = sum;
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  double ms = 300;
  int threads = 1;
  std::string isa = "both";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--ms") == 0) ms = std::atof(argv[i + 1]);
    else if (std::strcmp(argv[i], "--threads") == 0) threads = std::max(1, std::atoi(argv[i + 1]));
    else if (std::strcmp(argv[i], "--isa") == 0) isa = argv[i + 1];
  }
  float sink = 0;
  __builtin_cpu_init();
  if (isa != "avx2") {
    if (__builtin_cpu_supports("avx512f"))
      std::printf("fma_avx512_gflops %.1f\n", measure(run_avx512, 16, ms, 6, threads, &sink));
    else
      std::printf("fma_avx512_gflops n/a\n");
  }
  if (isa != "avx512") {
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      std::printf("fma_avx2_gflops %.1f\n", measure(run_avx2, 8, ms, 6, threads, &sink));
    else
      std::printf("fma_avx2_gflops n/a\n");
  }
  std::fprintf(stderr, "(checksum %g)\n", double(sink));
  return 0;
}
