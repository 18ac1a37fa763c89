#include "sliver/executor.h"

#include <algorithm>
#include <sstream>

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

std::vector<Tensor> Plan::run(std::vector<Tensor> feeds, const std::vector<int>& wanted,
                              ThreadPool* pool, std::vector<StepProfile>* profile) const {
  SLIVER_CHECK(feeds.size() == inputs_.size(), "expected ", inputs_.size(), " feeds, got ",
               feeds.size());
  std::vector<Tensor> slots(num_slots_);
  for (auto& c : constants_) slots[c.first] = c.second;
  for (size_t i = 0; i < feeds.size(); ++i) slots[inputs_[i]] = std::move(feeds[i]);
  std::vector<const void*> shared;  // memory the results must not alias
  for (auto& c : constants_) shared.push_back(c.second.owner.get());
  for (int i : inputs_) shared.push_back(slots[i].owner.get());
  if (profile) profile->assign(steps_.size(), StepProfile{});

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
  }

  // Results are handed to the caller, who may write to them: never give back
  // memory shared with a constant, a feed or another result.
  std::vector<Tensor> result;
  result.reserve(wanted.size());
  for (int w : wanted) {
    SLIVER_CHECK(w >= 0 && w < static_cast<int>(outputs_.size()), "bad output index ", w);
    const Tensor& t = slots[outputs_[w]];
    if (!t.defined()) fail("graph output ", w, " was not computed");
    bool aliased = t.dtype != DType::opaque &&
                   std::find(shared.begin(), shared.end(), t.owner.get()) != shared.end();
    result.push_back(aliased ? t.clone() : t);
    shared.push_back(t.owner.get());
  }
  return result;
}

}  // namespace sliver
