// Fork-join pool: a job is published by bumping generation_; each worker drains tasks from next_ and
// decrements busy_. Spinning, then std::atomic::wait (a futex) when idle for long.
#include "base/thread_pool.h"

#include <algorithm>
#include <exception>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define G4_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define G4_PAUSE() asm volatile("yield")
#else
#define G4_PAUSE() ((void)0)
#endif

namespace g4 {

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = int(std::thread::hardware_concurrency());
  n_threads_ = n_threads < 1 ? 1 : n_threads;
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::drain() {
  for (;;) {
    const int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= n_tasks_) break;
    (*fn_)(i);
  }
}

void ThreadPool::worker_loop() {
  uint32_t seen = 0;
  for (;;) {
    uint32_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < 4000; ++spin) {
      G4_PAUSE();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      generation_.wait(seen, std::memory_order_acquire);
      continue;
    }
    seen = g;
    if (stop_.load()) return;
    drain();
    busy_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run(int64_t n_tasks, const std::function<void(int64_t)>& fn) {
  if (n_tasks <= 0) return;
  if (workers_.empty() || n_tasks == 1) {
    for (int64_t i = 0; i < n_tasks; ++i) fn(i);
    return;
  }
  fn_ = &fn;
  n_tasks_ = n_tasks;
  next_.store(0, std::memory_order_relaxed);
  busy_.store(int(workers_.size()), std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  drain();
  // Yield after a short spin: on a shared, oversubscribed machine a descheduled worker must get the core.
  for (int spin = 0; busy_.load(std::memory_order_acquire) != 0; ++spin) {
    if (spin < 2000) G4_PAUSE();
    else std::this_thread::yield();
  }
  fn_ = nullptr;
}

void split_run(int64_t n, int64_t n_threads, const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t nt = std::max<int64_t>(1, std::min(n, n_threads));
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errs(static_cast<size_t>(nt));
  for (int64_t k = 0; k < nt; ++k) {
    auto work = [&, k] {
      try {
        fn(n * k / nt, n * (k + 1) / nt);
      } catch (...) {
        errs[size_t(k)] = std::current_exception();
      }
    };
    if (k + 1 < nt) pool.emplace_back(work);
    else work();
  }
  for (auto& t : pool) t.join();
  for (auto& e : errs)
    if (e) std::rethrow_exception(e);
}

}  // namespace g4
