// featx/detail/thread_team.hpp: the threads that share one image, kept in a
// single OpenMP region for a whole forward pass.
//
// A forward pass at batch 1 is ~20 steps (fused blocks, the last 1x1 conv),
// each split into tasks among the threads. Opening an OpenMP region per step
// cost about 3 us of fork and join each on a 2-core Zen 5 VM (an empty
// `parallel num_threads(2)`), 3% of a 1.9 ms two-thread pass. Here the
// region opens once: thread 0 runs the step loop, and for each split step
// publishes a job (a function and its tasks) with one atomic increment; the
// other threads, waiting on that word, take tasks from the job's
// TaskQueues and count themselves out. Thread 0 waits until every helper is
// out before the step's outputs are read (the same join as a region's end).
//
// Waiting: a short spin with the CPU's pause hint (a step follows the last
// within microseconds), then yielding the core on every check, so a helper
// whose core a neighbour wants, or that waits through thread 0's serial
// work, gives the core up instead of burning it.
//
// Which thread runs a task never changes what it computes (task_queues.hpp),
// so results are those of one thread. Nothing here allocates.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "featx/detail/parallel.hpp"
#include "featx/detail/task_queues.hpp"

namespace featx {
namespace detail {

// The CPU's spin-wait hint: lets the other hardware thread of a core run
// and saves power while a flag is polled.
inline void cpu_pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || (defined(__arm__) && defined(__ARM_ARCH) && __ARM_ARCH >= 7)
  __asm__ __volatile__("yield");
#endif
}

// Polls done() until it holds: kSpins pause-spins (about 10-40 us), then a
// yield of the core before each further check.
template <typename Done>
inline void wait_until(Done done) {
  constexpr int kSpins = 4096;
  for (int i = 0; i < kSpins; ++i) {
    if (done()) return;
    cpu_pause();
  }
  while (!done()) std::this_thread::yield();
}

class ThreadTeam {
 public:
  explicit ThreadTeam(int threads) : requested_(threads < 1 ? 1 : threads) {}

  // Threads sharing the tasks: inside run(), those the region got (fewer
  // than asked for inside another parallel region); outside it, 1.
  int threads() const { return threads_; }

  // Runs body() on the calling thread with the team's other threads serving
  // its run_tasks calls; returns when body() has returned and every helper
  // has left. One thread, or no OpenMP: body() alone.
  template <typename Body>
  void run(Body body) {
#ifdef FEATX_OPENMP
    if (requested_ > 1) {
      FEATX_OMP(parallel num_threads(requested_))
      {
        const int t = thread_index();
        if (t == 0) {
          threads_ = team_size();
          body();
          publish(nullptr, nullptr);  // the helpers' signal to leave
        } else {
          serve(t);
        }
      }
      threads_ = 1;
      return;
    }
#endif
    body();
  }

  // From body(), on thread 0: work(t) on every thread t of the team at
  // once (work(0) on this one); returns when all have returned. One thread:
  // work(0).
  template <typename Work>
  void run_on_each(Work work) {
    if (threads_ <= 1) {
      work(0);
      return;
    }
    struct Job {
      static void call(void* self, int t) { (*static_cast<Work*>(self))(t); }
    };
    busy_.store(threads_ - 1, std::memory_order_relaxed);
    publish(&Job::call, &work);
    work(0);
    wait_until([&] { return busy_.load(std::memory_order_acquire) == 0; });
  }

  // From body(), on thread 0: task(i, thread, state) for every i in
  // [0, tasks) across the team, each exactly once; thread < threads() (an
  // index into per-thread scratch) and `state` is that thread's own State,
  // kept from one of its tasks to the next. Returns when all are done. One
  // thread runs the tasks in order.
  template <typename State, typename Task>
  void run_tasks_with_state(int64_t tasks, Task task) {
    if (threads_ <= 1 || tasks <= 1) {
      State state{};
      for (int64_t i = 0; i < tasks; ++i) task(i, 0, state);
      return;
    }
    TaskQueues queues(tasks, threads_);
    run_on_each([&](int t) {
      State state{};
      for (int64_t i = queues.next(t); i >= 0; i = queues.next(t)) task(i, t, state);
    });
  }

  template <typename Task>
  void run_tasks(int64_t tasks, Task task) {
    struct None {};
    run_tasks_with_state<None>(tasks, [&](int64_t i, int t, None&) { task(i, t); });
  }

 private:
  using Call = void (*)(void*, int);

  void publish(Call call, void* context) {
    call_ = call;
    context_ = context;
    epoch_.fetch_add(1, std::memory_order_release);
  }

  // A helper's life: wait for the next job, run its share, count out; a
  // job without a function ends the region.
  void serve(int t) {
    uint32_t seen = 0;  // no job is published twice before every helper ran it
    for (;;) {
      uint32_t now = seen;
      wait_until([&] { return (now = epoch_.load(std::memory_order_acquire)) != seen; });
      seen = now;
      if (!call_) return;
      call_(context_, t);
      busy_.fetch_sub(1, std::memory_order_release);
    }
  }

  int requested_;
  int threads_ = 1;
  Call call_ = nullptr;
  void* context_ = nullptr;
  alignas(64) std::atomic<uint32_t> epoch_{0};  // one cache line each: polled by the helpers
  alignas(64) std::atomic<int> busy_{0};       // helpers not yet out of the current job
};

}  // namespace detail
}  // namespace featx
