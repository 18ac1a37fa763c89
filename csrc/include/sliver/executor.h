// The step-list executor: what run() does once the Python compiler is done.
//
// Every value of the graph has a slot. Constants are bound to their slots at
// creation; feeds are bound per call; each step reads its input slots and
// fills its output slots, and slots no later step reads are dropped right
// away, so intermediates are held only while live. Their memory comes from an
// arena laid out by the memory plan (memory_plan.h) once the feed shapes have
// been seen. run() keeps its slots on its own stack frame and takes an arena of
// its own, so concurrent calls on one plan are safe as long as kernels keep no
// mutable state (they don't: scratch is per call or per thread).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "sliver/kernel.h"
#include "sliver/memory_plan.h"

namespace sliver {

struct Step {
  std::string node_name, op_type;
  std::vector<int> inputs;   // -1: missing optional input
  std::vector<int> outputs;  // -1: unused optional output
  std::shared_ptr<Kernel> kernel;
  std::vector<int> release;  // slots whose last reader is this step
};

struct StepProfile {
  double seconds = 0;
};

class Plan {
 public:
  explicit Plan(int num_slots) : num_slots_(num_slots) {}

  void bind_constant(int slot, Tensor value) {
    pin(slot);
    constants_.emplace_back(slot, std::move(value));
  }
  void add_step(Step step) { steps_.push_back(std::move(step)); }
  void set_inputs(std::vector<int> slots) {
    for (int s : slots) pin(s);
    inputs_ = std::move(slots);
  }
  void set_outputs(std::vector<int> slots) { outputs_ = std::move(slots); }

  // Runs all steps; returns the tensors of `wanted` output positions (indices into
  // the outputs given to set_outputs). `profile`, if given, gets one entry per step.
  std::vector<Tensor> run(std::vector<Tensor> feeds, const std::vector<int>& wanted,
                          ThreadPool* pool, std::vector<StepProfile>* profile) const;

  const std::vector<Step>& steps() const { return steps_; }
  int num_slots() const { return num_slots_; }
  MemoryStats memory_stats() const { return memory_.stats(); }
  void set_memory_planning(bool on) { plan_memory_ = on; }

 private:
  int num_slots_;
  std::vector<std::pair<int, Tensor>> constants_;
  // Slots whose memory belongs to someone else (feeds: the caller's arrays; constants): never
  // handed to a kernel as reusable output memory.
  std::vector<bool> pinned_;
  void pin(int slot) {
    if (slot < 0) return;
    if (static_cast<size_t>(slot) >= pinned_.size()) pinned_.resize(slot + 1, false);
    pinned_[slot] = true;
  }
  uint64_t reusable_inputs(const Step& step, const std::vector<Tensor>& slots) const;
  std::vector<Step> steps_;
  std::vector<int> inputs_, outputs_;
  mutable MemoryPlanner memory_;
  bool plan_memory_ = true;
};

}  // namespace sliver
