// Memory plan: every intermediate tensor of a run gets an offset in one arena.
//
// Kernels allocate their outputs and temporaries with Tensor::empty, in an order that depends
// only on the input shapes. So instead of asking each kernel for its sizes, the executor learns
// them: the first run with a new set of feed shapes *records* every allocation made on the
// run's thread (step, size) and when its memory actually died (the last Tensor sharing it gone:
// released slots, temporaries, views included). Blocks still alive at the end are results (or
// held by the caller) and stay on the heap. The recorded intervals are then packed into one
// arena by greedy best-offset placement, largest block first: two blocks share bytes only if
// their lifetimes do not overlap.
//
// Later runs with the same feed shapes *replay*: the k-th allocation of step s gets its planned
// slice of an arena (no malloc, memory already faulted in). Every replayed block's death is
// checked at the step the plan says; if the graph behaved differently (a size or a lifetime
// that depends on values, not shapes), the rest of that run allocates from the heap and the
// next run records again, so a surprise costs speed, never correctness. Arenas are pooled, one
// per concurrent run, and an arena is reused only when nothing outside the executor still holds
// a piece of it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "sliver/tensor.h"

namespace sliver {

/// Where Tensor::empty gets memory on the current thread (heap when none is installed).
class AllocHook {
 public:
  virtual ~AllocHook() = default;
  /// Memory for `bytes` (64-byte aligned) and its owner, or nullptr to use the heap.
  virtual void* allocate(size_t bytes, std::shared_ptr<void>* owner) = 0;
};

/// Installs `hook` on this thread for the scope's lifetime (nested plans restore the outer one).
class ScopedAllocHook {
 public:
  explicit ScopedAllocHook(AllocHook* hook);
  ~ScopedAllocHook();
  ScopedAllocHook(const ScopedAllocHook&) = delete;
  ScopedAllocHook& operator=(const ScopedAllocHook&) = delete;

 private:
  AllocHook* saved_;
};

AllocHook* current_alloc_hook();

/// Allocation sizes and offsets learnt for one set of feed shapes.
struct MemoryPlan {
  struct Block {
    size_t bytes = 0;
    int64_t offset = -1;  // -1: heap (a result, or alive past the run)
    int first = 0, last = 0;  // steps that allocate it and after which it is dead
  };
  std::vector<Shape> feed_shapes;
  std::vector<std::vector<int>> step_blocks;  // per step: its allocations' block indices, in order
  std::vector<std::vector<int>> dying_after;  // per step: blocks whose memory must be dead after it
  std::vector<Block> blocks;
  size_t arena_bytes = 0;
};

/// Counters of the latest run (tests and `sliver inspect`).
struct MemoryStats {
  size_t arena_bytes = 0;      // the arena of the current plan (0 before a plan exists)
  int64_t planned_blocks = 0;  // allocations served from the arena per run
  int64_t heap_allocs = 0;     // allocations of the last run that went to the heap
  bool replayed = false;       // whether the last run used the plan
};

/// The per-Plan state: the current memory plan, idle arenas, statistics.
class MemoryPlanner {
 public:
  /// What one run uses: a recorder (no plan yet for these shapes) or a replayer.
  class RunScope;
  std::unique_ptr<RunScope> begin(const std::vector<Tensor>& feeds, int num_steps);
  MemoryStats stats() const;

  // Called by a run's scope when it is done.
  void finish_record(std::shared_ptr<MemoryPlan> plan, int64_t heap_allocs);
  void finish_replay(std::shared_ptr<MemoryPlan> plan, std::shared_ptr<uint8_t> arena,
                     bool ok, int64_t heap_allocs);

 private:
  mutable std::mutex mu_;
  std::shared_ptr<MemoryPlan> plan_;
  std::vector<std::shared_ptr<uint8_t>> idle_arenas_;
  MemoryStats stats_;
};

class MemoryPlanner::RunScope : public AllocHook {
 public:
  virtual void step_begin(int step) = 0;
  /// After the step's slots were released: checks (or records) which blocks died.
  virtual void step_end(int step) = 0;
  /// Whether `t` lives in this run's arena (results must then be copied out).
  virtual bool in_arena(const Tensor& t) const = 0;
  /// Called once the run's slots are gone.
  virtual void finish() = 0;
};

}  // namespace sliver
