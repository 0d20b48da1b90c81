// featx/detail/task_queues.hpp: a layer's tasks shared out so that a stalled
// thread's work is finished by the others.
//
// Tasks 0..n-1 start as one contiguous share per thread (thread t owns
// [n*t/T, n*(t+1)/T)). Each thread runs its own share in order, even
// shares front to back and odd shares back to front, so two neighbouring
// shares meet in the middle: a fused block's bands keep reusing the rows
// the thread's previous band expanded, and in a chain of fused blocks
// (fused_chain.hpp) each thread starts the next block where it depends
// only on its own earlier bands. A thread whose share is done takes tasks
// from the other end of another's share, one at a time, until none is
// left. On a shared machine a core taken away by the hypervisor or a
// neighbour then costs the layer at most the task that thread holds, not
// its whole share (with equal static shares the other thread waited at the
// barrier for all of it).
//
// Which thread runs a task never changes what it computes (every task writes
// its own outputs with the same kernel calls), so results stay bit-identical
// for every thread count and every interleaving.
#pragma once

#include <atomic>
#include <cstdint>

namespace featx {
namespace detail {

// Shares beyond this many threads go to the first kMaxShares (a thread
// without a share of its own starts by taking from the others).
constexpr int kMaxShares = 64;

inline int task_shares(int threads) { return threads < 1 ? 1 : threads > kMaxShares ? kMaxShares : threads; }

// One share's remaining tasks [front, back) in one word, so the owner and a
// thief never both take its last task. Tasks are counted in 32 bits (a
// layer has at most a few thousand). One cache line each: owners do not
// slow each other.
struct alignas(64) TaskShare {
  std::atomic<uint64_t> range{0};

  static uint64_t pack(int64_t front, int64_t back) { return uint64_t(uint32_t(front)) | uint64_t(back) << 32; }

  int64_t take(bool from_back) {
    uint64_t r = range.load(std::memory_order_relaxed);
    for (;;) {
      const int64_t front = int64_t(uint32_t(r)), back = int64_t(r >> 32);
      if (front >= back) return -1;
      const uint64_t taken = from_back ? pack(front, back - 1) : pack(front + 1, back);
      if (range.compare_exchange_weak(r, taken, std::memory_order_relaxed)) return from_back ? back - 1 : front;
    }
  }
};

// Tasks [0, tasks) dealt over shares[0, count): the owners' starting ranges.
inline void deal_tasks(TaskShare* shares, int count, int64_t tasks) {
  for (int t = 0; t < count; ++t)
    shares[t].range.store(TaskShare::pack(tasks * t / count, tasks * (t + 1) / count), std::memory_order_relaxed);
}

// The next task for thread t among shares[0, count): its own share's next
// one (from the front when t is even, the back when odd), then the other
// end of another's; -1 when every task has been taken.
inline int64_t next_task(TaskShare* shares, int count, int t) {
  if (t < count) {
    const int64_t own = shares[t].take(t % 2 == 1);
    if (own >= 0) return own;
  }
  for (int i = 1; i <= count; ++i) {
    const int victim = (t + i) % count;
    const int64_t stolen = shares[victim].take(victim % 2 == 0);
    if (stolen >= 0) return stolen;
  }
  return -1;
}

// One step's tasks with their shares held here (on the caller's stack).
class TaskQueues {
 public:
  TaskQueues(int64_t tasks, int threads) : count_(task_shares(threads)) { deal_tasks(share_, count_, tasks); }
  int64_t next(int t) { return next_task(share_, count_, t); }

 private:
  int count_;
  TaskShare share_[kMaxShares];
};

}  // namespace detail
}  // namespace featx
