// Reads and decodes inputs on worker threads while the network runs, and
// hands them to the caller in input order (`featx extract`).
//
// Workers take the next input index in turn and may run at most `window`
// inputs ahead of the one the caller waits for, so memory stays bounded
// (window x one decoded image) whatever the number of inputs. With no
// workers, take() loads the input itself: the plain sequential loop.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "featx/detail/parallel.hpp"
#include "featx/image.hpp"
#include "featx/status.hpp"
#include "inputs.hpp"

namespace featx_cli {

// Decoding threads: one per two cores (one below four); the network takes
// the other cores. A camera JPEG costs more to decode (30 ms for 12 MP) than
// its forward pass on one core (7 ms), a small photo less: half and half is
// the middle (bench/RESULTS.md, "featx extract, pipelined").
inline int default_decoders() {
  const int cores = featx::detail::resolve_threads(0);  // OMP_NUM_THREADS or the cores we may use
  return cores >= 4 ? cores / 2 : 1;
}

// Threads for the network when `decoders` threads decode beside it: the
// other cores, at least one (OpenMP's default count when there are none).
inline int network_threads_beside(int decoders) {
  if (decoders == 0) return 0;
  const int cores = featx::detail::resolve_threads(0);
  return cores > decoders ? cores - decoders : 1;
}

struct LoadedInput {
  featx::Status status;
  std::vector<InputItem> items;  // one per image; N for an (N,H,W,3) .npy
};

class Prefetcher {
 public:
  // Loads files[first..end) with `workers` threads.
  Prefetcher(const std::vector<std::string>& files, size_t first, size_t end, const featx::PreprocessOptions& pre,
             int workers, size_t window)
      : files_(files), pre_(pre), next_(first), end_(end), waiting_for_(first),
        window_(window < 1 ? 1 : window), slots_(window_) {
    for (int w = 0; w < workers; ++w) threads_.emplace_back([this] { work(); });
  }
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;
  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  // Input i, the next one in order: waits until a worker has loaded it.
  LoadedInput take(size_t i) {
    if (threads_.empty()) return load(i);
    std::unique_lock<std::mutex> lock(mutex_);
    Slot& slot = slots_[i % window_];
    changed_.wait(lock, [&] { return slot.ready && slot.index == i; });
    LoadedInput out = std::move(slot.input);
    slot.ready = false;
    waiting_for_ = i + 1;
    lock.unlock();
    changed_.notify_all();  // a slot is free: a worker may go on
    return out;
  }

 private:
  struct Slot {
    size_t index = 0;
    bool ready = false;
    LoadedInput input;
  };

  LoadedInput load(size_t i) const {
    LoadedInput in;
    in.status = load_input(files_[i], pre_, &in.items);
    if (!in.status.ok()) in.items.clear();
    return in;
  }

  void work() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      changed_.wait(lock, [&] { return stopping_ || (next_ < end_ && next_ < waiting_for_ + window_); });
      if (stopping_) return;
      const size_t i = next_++;
      lock.unlock();
      LoadedInput in = load(i);
      lock.lock();
      Slot& slot = slots_[i % window_];
      slot.index = i;
      slot.input = std::move(in);
      slot.ready = true;
      changed_.notify_all();
    }
  }

  const std::vector<std::string>& files_;
  const featx::PreprocessOptions pre_;
  std::mutex mutex_;
  std::condition_variable changed_;
  size_t next_, end_, waiting_for_;
  const size_t window_;
  std::vector<Slot> slots_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;  // last: started once the rest is set up
};

}  // namespace featx_cli
