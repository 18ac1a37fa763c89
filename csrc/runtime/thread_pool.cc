// Fork-join pool: see thread_pool.h for the contract.
//
// A job is published by bumping generation_ under state_mutex_. A worker that wakes up joins it
// (busy_workers_ + 1) only while it is still open; the caller closes it once no task is left to
// claim and then waits only for the workers that joined. So a worker that is slow to wake (a
// busy machine) never delays the caller, and never sees a finished job's function.
#include "sliver/thread_pool.h"

#include <algorithm>
#include <chrono>

namespace sliver {
namespace {

// How long an idle thread polls before sleeping. Short enough that a pool never burns a core
// between runs, long enough to cover the gap between two kernels of one inference.
constexpr auto kSpin = std::chrono::microseconds(50);

// > 0 while this thread executes a task of any pool: a nested call then runs inline (its pool may
// be the one we are in, whose call mutex this very thread may hold).
thread_local int t_task_depth = 0;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

// Polls pred() for up to kSpin; returns whether it became true.
template <class Pred>
bool spin_until(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 1;; ++i) {
    if (pred()) return true;
    cpu_relax();
    if ((i & 63) == 0 && std::chrono::steady_clock::now() > deadline) return false;
  }
}

struct TaskScope {
  TaskScope() { ++t_task_depth; }
  ~TaskScope() { --t_task_depth; }
};

}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) num_threads = std::max(1u, std::thread::hardware_concurrency());
  num_threads_ = num_threads;
  workers_.reserve(num_threads_ - 1);
  for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::parallel_for(int64_t n,
                              const std::function<void(int64_t begin, int64_t end)>& fn) {
  if (n <= 0) return;
  if (num_threads_ == 1) {
    fn(0, n);
    return;
  }
  const int64_t ranges = std::min<int64_t>(n, kRangesPerThread * num_threads_);
  const int64_t base = n / ranges, rem = n % ranges;
  parallel_tasks(ranges, [&](int64_t r) {
    const int64_t begin = r * base + std::min(r, rem);
    fn(begin, begin + base + (r < rem ? 1 : 0));
  });
}

void ThreadPool::parallel_tasks(int64_t n, const std::function<void(int64_t i)>& fn) {
  if (n <= 0) return;
  if (num_threads_ == 1 || n == 1 || t_task_depth > 0) {
    TaskScope scope;
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::unique_lock<std::mutex> call_lock(call_mutex_, std::try_to_lock);
  if (!call_lock.owns_lock()) {  // another thread's job is running: do ours alone
    TaskScope scope;
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    job_ = &fn;
    job_size_ = n;
    next_task_.store(0, std::memory_order_relaxed);
    failed_.store(false, std::memory_order_relaxed);
    error_ = nullptr;
    job_open_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_cv_.notify_all();
  run_job();
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    job_open_ = false;
  }
  if (!spin_until([&] { return busy_workers_.load(std::memory_order_acquire) == 0; })) {
    std::unique_lock<std::mutex> lock(state_mutex_);
    done_cv_.wait(lock, [&] { return busy_workers_.load(std::memory_order_acquire) == 0; });
  }
  std::exception_ptr error;
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    job_ = nullptr;
    error = error_;
    error_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

void ThreadPool::prewake() {
  if (workers_.empty()) return;
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    ++pokes_;
  }
  wake_cv_.notify_all();
}

void ThreadPool::run_job() {
  TaskScope scope;
  const auto& fn = *job_;
  const int64_t n = job_size_;
  while (!failed_.load(std::memory_order_relaxed)) {
    const int64_t i = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (i >= n) break;
    try {
      fn(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(state_mutex_);
      if (!error_) error_ = std::current_exception();
      failed_.store(true, std::memory_order_relaxed);
    }
  }
}

void ThreadPool::worker_loop(int /*index*/) {
  uint64_t seen = 0;
  for (;;) {
    auto fresh = [&] { return generation_.load(std::memory_order_acquire) != seen; };
    if (!spin_until(fresh)) {
      std::unique_lock<std::mutex> lock(state_mutex_);
      const uint64_t pokes = pokes_;
      wake_cv_.wait(lock, [&] { return fresh() || pokes_ != pokes; });
      if (!fresh()) continue;  // prewake(): spin again, ready for the job about to come
    }
    {
      std::lock_guard<std::mutex> lock(state_mutex_);  // pairs with the publishing critical section
      seen = generation_.load(std::memory_order_relaxed);
      if (stop_) return;
      if (!job_open_) continue;  // finished without us
      busy_workers_.fetch_add(1, std::memory_order_relaxed);
    }
    run_job();
    std::lock_guard<std::mutex> lock(state_mutex_);
    if (busy_workers_.fetch_sub(1, std::memory_order_acq_rel) == 1 && !job_open_)
      done_cv_.notify_one();
  }
}

}  // namespace sliver
