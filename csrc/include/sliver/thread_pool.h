// A small fork-join thread pool for kernels.
//
// One pool serves a session: an operator splits its work into independent pieces and calls
// parallel_for or parallel_tasks; the calling thread works too, so a pool of N threads owns N-1
// workers. Workers spin briefly after a job (back-to-back layers are common) and then sleep on a
// condition variable, so nothing burns CPU between runs.
//
// Rules:
//  - An exception thrown by a task stops the handing out of further tasks and is rethrown in the
//    caller once every task already started has finished (the first one wins).
//  - A call made while the pool is busy (from a task, i.e. nested, or from another thread) runs
//    inline on the calling thread instead of waiting: always safe, never a deadlock.
//  - num_threads == 1 means no workers: calls run inline with no synchronisation at all.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace sliver {

class ThreadPool {
 public:
  /// num_threads counts the caller: 1 = inline only; <= 0 = std::thread::hardware_concurrency().
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  /// Ranges per thread in parallel_for: enough for the caller to take over a late worker's
  /// share, few enough that per-range setup stays negligible.
  static constexpr int64_t kRangesPerThread = 4;

  /// Wakes sleeping workers so they spin (for the usual short while) ahead of the next job: an
  /// inference calls this when it starts, so the futex wake-up overlaps its first, serial steps.
  void prewake();
  /// Splits [0, n) into min(n, kRangesPerThread * num_threads()) contiguous ranges of near-equal
  /// length (the split depends only on n and num_threads(), not on timing) and calls
  /// fn(begin, end) once per range; ranges are picked up by whichever thread is free, so a
  /// worker that wakes late (a busy or virtualised CPU) costs its share, not the whole call.
  /// Returns when all are done.
  void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

  /// Calls fn(i) once for every i in [0, n); indices are handed out one at a time to whichever
  /// thread is free (dynamic load balance for uneven tasks). Returns when all are done.
  void parallel_tasks(int64_t n, const std::function<void(int64_t i)>& fn);

 private:
  void worker_loop(int index);
  void run_job();  // claims tasks of the current job until none are left

  int num_threads_;
  std::vector<std::thread> workers_;

  std::mutex call_mutex_;  // held by the caller for a whole job; try_lock failure -> run inline

  // The current job, published under state_mutex_ by bumping generation_.
  std::mutex state_mutex_;
  std::condition_variable wake_cv_;  // workers wait for a new generation
  std::condition_variable done_cv_;  // caller waits for busy_workers_ == 0
  std::atomic<uint64_t> generation_{0};
  uint64_t pokes_ = 0;  // bumped by prewake(), guarded by state_mutex_
  bool stop_ = false;
  bool job_open_ = false;             // workers may still join the current job
  std::atomic<int> busy_workers_{0};  // workers that joined the current job and are not done

  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t job_size_ = 0;
  std::atomic<int64_t> next_task_{0};
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;  // first exception, guarded by state_mutex_
};

}  // namespace sliver
