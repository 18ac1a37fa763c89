#include "sliver/executor.h"

#include <algorithm>
#include <optional>
#include <sstream>

#include "sliver/thread_pool.h"

namespace sliver {

namespace {
std::string describe_inputs(const std::vector<const Tensor*>& in) {
  std::ostringstream os;
  for (size_t i = 0; i < in.size(); ++i) {
    if (i) os << ", ";
    if (!in[i]) {
      os << "<none>";
    } else {
      os << dtype_name(in[i]->dtype);
      if (in[i]->dtype != DType::opaque) os << shape_str(in[i]->shape);
    }
  }
  return os.str();
}
}  // namespace

// In-place reuse: an input slot this step releases, read once by it, not pinned, whose memory
// sliver allocated (a Python-run op's numpy result may be a view of other bytes) and only that
// slot holds (use_count 1: no view or result shares it).
uint64_t Plan::reusable_inputs(const Step& step, const std::vector<Tensor>& slots) const {
  uint64_t mask = 0;
  const size_t n = std::min<size_t>(step.inputs.size(), 64);
  for (size_t i = 0; i < n; ++i) {
    const int slot = step.inputs[i];
    if (slot < 0 || (static_cast<size_t>(slot) < pinned_.size() && pinned_[slot])) continue;
    const Tensor& t = slots[slot];
    if (t.dtype == DType::opaque || t.owner.use_count() != 1 || !allocated_by_sliver(t)) continue;
    if (std::count(step.inputs.begin(), step.inputs.end(), slot) != 1) continue;
    if (std::find(step.release.begin(), step.release.end(), slot) == step.release.end()) continue;
    mask |= uint64_t{1} << i;
  }
  return mask;
}

std::vector<Tensor> Plan::run(std::vector<Tensor> feeds, const std::vector<int>& wanted,
                              ThreadPool* pool, std::vector<StepProfile>* profile) const {
  SLIVER_CHECK(feeds.size() == inputs_.size(), "expected ", inputs_.size(), " feeds, got ",
               feeds.size());
  std::unique_ptr<MemoryPlanner::RunScope> memory;
  if (plan_memory_) memory = memory_.begin(feeds, static_cast<int>(steps_.size()));
  std::optional<ScopedAllocHook> hook;
  if (memory) hook.emplace(memory.get());
  std::vector<Tensor> slots(num_slots_);
  for (auto& c : constants_) slots[c.first] = c.second;
  for (size_t i = 0; i < feeds.size(); ++i) slots[inputs_[i]] = std::move(feeds[i]);
  std::vector<const void*> shared;  // memory the results must not alias
  for (auto& c : constants_) shared.push_back(c.second.owner.get());
  for (int i : inputs_) shared.push_back(slots[i].owner.get());
  if (profile) profile->assign(steps_.size(), StepProfile{});

  // A nested plan (a control-flow body run by its node's kernel) borrows the enclosing run's
  // threads; the pool runs one parallel region at a time, and the enclosing step waits.
  static thread_local ThreadPool* t_enclosing_pool = nullptr;
  if (!pool) {
    pool = t_enclosing_pool;
  } else if (!t_enclosing_pool) {
    pool->prewake();
  }
  struct PoolScope {
    ThreadPool* saved;
    explicit PoolScope(ThreadPool* p) : saved(t_enclosing_pool) { t_enclosing_pool = p; }
    ~PoolScope() { t_enclosing_pool = saved; }
  } pool_scope(pool);
  RunContext ctx;
  ctx.pool = pool;
  std::vector<const Tensor*> in;
  std::vector<Tensor> out;
  for (size_t s = 0; s < steps_.size(); ++s) {
    const Step& step = steps_[s];
    in.assign(step.inputs.size(), nullptr);
    for (size_t i = 0; i < step.inputs.size(); ++i) {
      int slot = step.inputs[i];
      if (slot >= 0) {
        if (!slots[slot].defined())
          fail("node '", step.node_name, "' (", step.op_type, "): input ", i,
               " has no value (not produced by any earlier node)");
        in[i] = &slots[slot];
      }
    }
    out.assign(step.outputs.size(), Tensor{});
    ctx.reusable_inputs = reusable_inputs(step, slots);
    if (memory) memory->step_begin(static_cast<int>(s));
    auto t0 = std::chrono::steady_clock::now();
    try {
      step.kernel->run(ctx, in, out);
    } catch (const Error& e) {
      fail("node '", step.node_name, "' (", step.op_type, ") with inputs (", describe_inputs(in),
           "): ", e.what());
    } catch (const std::bad_alloc&) {
      fail("node '", step.node_name, "' (", step.op_type, ") with inputs (", describe_inputs(in),
           "): out of memory");
    }
    if (profile) {
      (*profile)[s].seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    for (size_t o = 0; o < step.outputs.size(); ++o) {
      if (step.outputs[o] < 0) continue;
      if (!out[o].defined())
        fail("node '", step.node_name, "' (", step.op_type, "): kernel produced no output ", o);
      slots[step.outputs[o]] = std::move(out[o]);
    }
    for (int r : step.release) slots[r] = Tensor{};
    in.clear();
    if (memory) memory->step_end(static_cast<int>(s));
  }
  hook.reset();  // the copies below are results: heap

  // Results are handed to the caller, who may write to them: never give back
  // memory shared with a constant, a feed or another result.
  std::vector<Tensor> result;
  result.reserve(wanted.size());
  for (int w : wanted) {
    SLIVER_CHECK(w >= 0 && w < static_cast<int>(outputs_.size()), "bad output index ", w);
    const Tensor& t = slots[outputs_[w]];
    if (!t.defined()) fail("graph output ", w, " was not computed");
    bool aliased = t.dtype != DType::opaque &&
                   (std::find(shared.begin(), shared.end(), t.owner.get()) != shared.end() ||
                    (memory && memory->in_arena(t)));
    result.push_back(aliased ? t.clone() : t);
    shared.push_back(t.owner.get());
  }
  if (memory) {
    slots.clear();
    out.clear();
    memory->finish();
  }
  return result;
}

}  // namespace sliver
