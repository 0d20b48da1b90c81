// featx/detail/task_queues.hpp: a layer's tasks shared out so that a stalled
// thread's work is finished by the others.
//
// Tasks 0..n-1 start as one contiguous share per thread (thread t owns
// [n*t/T, n*(t+1)/T)) and each thread takes its own from the front, in
// order, so a fused block's bands keep reusing the rows the previous band
// expanded. A thread whose share is done takes tasks from the back of
// another's, one at a time, until none is left. On a shared machine a core
// taken away by the hypervisor or a neighbour then costs the layer at most
// the task that thread holds, not its whole share (with equal static shares
// the other thread waited at the barrier for all of it).
//
// Which thread runs a task never changes what it computes (every task writes
// its own outputs with the same kernel calls), so results stay bit-identical
// for every thread count and every interleaving.
#pragma once

#include <atomic>
#include <cstdint>


namespace featx {
namespace detail {

class TaskQueues {
 public:
  // Shares beyond this many threads go to the first kMaxShares (a thread
  // without a share of its own starts by taking from the others).
  static constexpr int kMaxShares = 64;

  TaskQueues(int64_t tasks, int threads) : shares_(threads < 1 ? 1 : threads > kMaxShares ? kMaxShares : threads) {
    for (int t = 0; t < shares_; ++t)
      share_[t].range.store(pack(tasks * t / shares_, tasks * (t + 1) / shares_), std::memory_order_relaxed);
  }

  // The next task for thread t (its own share's front first, then the back
  // of the others'), or -1 when every task has been taken.
  int64_t next(int t) {
    if (t < shares_) {
      const int64_t own = take(t, false);
      if (own >= 0) return own;
    }
    for (int i = 1; i <= shares_; ++i) {
      const int victim = (t + i) % shares_;
      const int64_t stolen = take(victim, true);
      if (stolen >= 0) return stolen;
    }
    return -1;
  }

 private:
  // [front, back) of a share in one word, so the owner and a thief never
  // both take its last task. Tasks are counted in 32 bits (a layer has at
  // most a few thousand).
  static uint64_t pack(int64_t front, int64_t back) { return uint64_t(uint32_t(front)) | uint64_t(back) << 32; }

  int64_t take(int s, bool from_back) {
    std::atomic<uint64_t>& range = share_[s].range;
    uint64_t r = range.load(std::memory_order_relaxed);
    for (;;) {
      const int64_t front = int64_t(uint32_t(r)), back = int64_t(r >> 32);
      if (front >= back) return -1;
      const uint64_t taken = from_back ? pack(front, back - 1) : pack(front + 1, back);
      if (range.compare_exchange_weak(r, taken, std::memory_order_relaxed)) return from_back ? back - 1 : front;
    }
  }

  struct alignas(64) Share {  // one cache line each: owners do not slow each other
    std::atomic<uint64_t> range{0};
  };
  int shares_;
  Share share_[kMaxShares];
};

}  // namespace detail
}  // namespace featx
