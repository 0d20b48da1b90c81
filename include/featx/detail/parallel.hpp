// featx/detail/parallel.hpp: featx's only door to OpenMP.
//
// Every parallel region in featx is written FEATX_OMP(parallel for ...): it
// is an OpenMP pragma when the TU is compiled with OpenMP and
// FEATX_NO_OPENMP is not defined, and nothing otherwise, so a program built
// with -fopenmp for its own code can still keep featx single-threaded.
// Results do not depend on it: every value is computed by the same
// operations whatever the thread count (see scheduler.hpp).
#pragma once

#if defined(_OPENMP) && !defined(FEATX_NO_OPENMP)
#define FEATX_OPENMP 1
#include <omp.h>
#define FEATX_PRAGMA(text) _Pragma(#text)
#define FEATX_OMP(...) FEATX_PRAGMA(omp __VA_ARGS__)
#else
#define FEATX_OMP(...)
#endif

namespace featx {
namespace detail {

// Threads a run asks for: `requested` when positive, else OpenMP's default
// (OMP_NUM_THREADS or every core); 1 without OpenMP.
inline int resolve_threads(int requested) {
#ifdef FEATX_OPENMP
  return requested > 0 ? requested : omp_get_max_threads();
#else
  (void)requested;
  return 1;
#endif
}

// This thread's index and the team's size inside a FEATX_OMP(parallel).
inline int thread_index() {
#ifdef FEATX_OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}
inline int team_size() {
#ifdef FEATX_OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

}  // namespace detail
}  // namespace featx
