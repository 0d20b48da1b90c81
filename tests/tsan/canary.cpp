// The ThreadSanitizer canary (tests/tsan_test.sh): proves that the TSan +
// OpenMP set-up both sees races and sees OpenMP's synchronisation.
//
//   canary racy   two std::threads each run OpenMP teams that increment one
//                 shared counter without synchronisation: TSan must report.
//   canary clean  the same shape as featx's run(): std::threads, each with
//                 its own buffers, run OpenMP parallel-for regions (static
//                 schedules, num_threads, regions one after another on the
//                 same pool) where workers write disjoint slices a region
//                 later reads whole, then the caller reads them after the
//                 region: correct code, so TSan must stay silent. Without
//                 OpenMP synchronisation visible to TSan (libgomp, or
//                 libomp without Archer) the barriers are invisible and
//                 this reports races that are not there.
#include <omp.h>

#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

static long shared_counter = 0;

static void racy_user() {
  for (int r = 0; r < 4; ++r) {
#pragma omp parallel num_threads(2)
    shared_counter += 1;  // every team member, and the other std::thread's team: a data race
  }
}

static double clean_user(int seed) {
  const int n = 4096;
  std::vector<float> a(n), b(n);
  double sum = 0;
  for (int r = 0; r < 8; ++r) {
#pragma omp parallel for num_threads(2) schedule(static)
    for (int i = 0; i < n; ++i) a[size_t(i)] = float(i % 97 + seed + r);
    // The next region reads what other workers of the previous one wrote.
#pragma omp parallel for num_threads(2) schedule(static)
    for (int t = 0; t < 2; ++t)
      for (int i = t; i < n; i += 2) b[size_t(i)] = a[size_t(n - 1 - i)] * 0.5f;
    for (int i = 0; i < n; ++i) sum += b[size_t(i)];  // the caller reads the workers' writes
  }
  return sum;
}

int main(int argc, char** argv) {
  const bool racy = argc > 1 && std::strcmp(argv[1], "racy") == 0;
  if (!racy && !(argc > 1 && std::strcmp(argv[1], "clean") == 0)) {
    std::fprintf(stderr, "usage: canary racy|clean\n");
    return 2;
  }
  double sums[2] = {0, 0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&sums, t, racy] {
      if (racy) racy_user();
      else sums[t] = clean_user(t);
    });
  for (auto& th : threads) th.join();
  std::printf("canary %s: counter %ld, sums %.1f %.1f\n", racy ? "racy" : "clean", shared_counter, sums[0], sums[1]);
  return 0;
}
