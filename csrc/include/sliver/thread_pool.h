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

  /// Splits [0, n) into min(n, num_threads()) contiguous ranges of near-equal length (the split
  /// depends only on n and num_threads(), not on timing) and calls fn(begin, end) once per range;
  /// ranges are picked up by whichever thread is free. Returns when all are done.
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
