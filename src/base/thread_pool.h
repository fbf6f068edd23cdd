// A small fork-join thread pool for kernels: run(n_tasks, fn) calls fn(task) for every task in
// [0, n_tasks) across the workers and the calling thread, and returns when all are done. Workers spin
// briefly before sleeping, because decode issues hundreds of short jobs per token and a futex wake per
// job would cost more than the job. One job at a time; run() must not be called from inside a task.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace g4 {

class ThreadPool {
 public:
  // n_threads counts the caller; 0 = std::thread::hardware_concurrency().
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Tasks are claimed dynamically (an atomic counter), so uneven tasks balance themselves.
  void run(int64_t n_tasks, const std::function<void(int64_t)>& fn);

 private:
  void worker_loop();
  void drain();

  int n_threads_ = 1;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t n_tasks_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<uint32_t> generation_{0};
  std::atomic<int> busy_{0};
  std::atomic<bool> stop_{false};
};

// For one-off bulk work (loading, conversion) rather than kernels: cuts [0, n) into n_threads contiguous
// ranges (at most n), runs fn(begin, end) for each on a thread of its own (the last on the caller's), joins
// them and rethrows the first exception a range threw.
void split_run(int64_t n, int64_t n_threads, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace g4
