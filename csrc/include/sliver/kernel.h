// The contract between the plan and an operator implementation.
//
// At session creation the Python compiler asks the registry for a kernel per
// node, handing it everything known statically (attributes, input dtypes and
// shapes, constant inputs such as weights). A factory may decline by returning
// nullptr (say, a dtype it has no code for); the node then runs through the
// Python fallback. Whatever a kernel can precompute (packed weights, tiling)
// it does in its constructor, so run() only computes.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "sliver/error.h"
#include "sliver/tensor.h"

namespace sliver {

class ThreadPool;

using AttrValue =
    std::variant<int64_t, double, std::string, std::vector<int64_t>, std::vector<double>,
                 std::vector<std::string>, Tensor>;

// ONNX node attributes, looked up by their ONNX names with the spec's defaults.
class Attrs {
 public:
  std::map<std::string, AttrValue> values;

  bool has(const std::string& name) const { return values.count(name) != 0; }
  int64_t get_int(const std::string& name, int64_t dflt) const;
  double get_float(const std::string& name, double dflt) const;
  std::string get_string(const std::string& name, const std::string& dflt) const;
  std::vector<int64_t> get_ints(const std::string& name, std::vector<int64_t> dflt = {}) const;
  std::vector<double> get_floats(const std::string& name, std::vector<double> dflt = {}) const;
  const Tensor* get_tensor(const std::string& name) const;
};

// A static shape: dims < 0 are unknown; `known == false` means the rank is unknown too.
struct StaticShape {
  bool known = false;
  Shape dims;
};

struct KernelInit {
  std::string op_type, domain, node_name;
  // The session's "sliver.*" config entries (SessionOptions.add_session_config_entry), e.g.
  // "sliver.sparse" = auto | dense | sparse.
  std::map<std::string, std::string> config;
  int opset = 0;
  Attrs attrs;
  std::vector<DType> input_dtypes;        // DType::undefined: missing optional input or unknown
  std::vector<StaticShape> input_shapes;
  std::vector<Tensor> const_inputs;       // defined where the input is a constant (initializer)
  std::vector<DType> output_dtypes;
  std::vector<StaticShape> output_shapes;
  int num_inputs() const { return static_cast<int>(input_dtypes.size()); }
  int num_outputs() const { return static_cast<int>(output_dtypes.size()); }
  bool has_input(int i) const { return i < num_inputs() && input_dtypes[i] != DType::undefined; }
  bool is_const(int i) const { return i < static_cast<int>(const_inputs.size()) && const_inputs[i].defined(); }
  std::string config_value(const std::string& key, const std::string& dflt) const {
    auto it = config.find(key);
    return it == config.end() ? dflt : it->second;
  }
};

struct RunContext {
  ThreadPool* pool = nullptr;  // the session's pool; nullptr runs single-threaded
  // Bit i set: nothing reads in[i] after this step and nothing else holds its memory (no view,
  // not a feed, constant or graph output), so an elementwise kernel may write its result there
  // (see ops/common.h output_reusing). Set by the executor per step.
  uint64_t reusable_inputs = 0;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // `in[i]` is nullptr for a missing optional input; `out` arrives sized to the
  // node's output count with undefined tensors, which the kernel fills.
  virtual void run(RunContext& ctx, const std::vector<const Tensor*>& in,
                   std::vector<Tensor>& out) = 0;
  // What was chosen at creation (micro-kernel, layout), for `sliver inspect` and profiles.
  virtual std::string describe() const { return ""; }
  // Bytes of the packed weights the kernel holds (its own copies: panels, sparse entries), for
  // `sliver inspect` and the weight-size goals of pruned models. 0: none, or not reported.
  virtual int64_t weight_bytes() const { return 0; }
};

struct PackedA;
struct PackedB;
struct PackedQ8B;
// Sizes of the dense packed layouts (pack/packed_bytes.cc), for weight_bytes() overrides; a null
// pointer counts 0.
int64_t packed_bytes(const PackedA* p);
int64_t packed_bytes(const PackedB* p);
int64_t packed_bytes(const PackedQ8B* p);
template <class P>
int64_t packed_bytes(const std::shared_ptr<P>& p) {
  return packed_bytes(p.get());
}
template <class P>
int64_t packed_bytes(const std::vector<std::shared_ptr<P>>& v) {
  int64_t n = 0;
  for (const auto& p : v) n += packed_bytes(p.get());
  return n;
}

using KernelFactory = std::unique_ptr<Kernel> (*)(const KernelInit&);

// Key: "Op" for the ONNX domain, "domain:Op" otherwise (e.g. "com.microsoft:QLinearAdd").
// Factories of one key are tried by priority, higher first, then in registration order: a
// specialised kernel (e.g. sparse weights) registers above 0 and declines what it does not win.
void register_kernel(const std::string& key, KernelFactory factory, int priority = 0);
std::unique_ptr<Kernel> create_kernel(const KernelInit& init);  // nullptr when none accepts
std::vector<std::string> registered_kernels();

}  // namespace sliver

#define SLIVER_CONCAT_(a, b) a##b
#define SLIVER_CONCAT(a, b) SLIVER_CONCAT_(a, b)
// Registers `factory` for `key` when the extension loads.
#define SLIVER_REGISTER_KERNEL(key, factory)                                  \
  static const bool SLIVER_CONCAT(sliver_registered_, __COUNTER__) =          \
      (::sliver::register_kernel(key, factory), true)
// The same, tried before the factories of a lower priority (SLIVER_REGISTER_KERNEL's is 0).
#define SLIVER_REGISTER_KERNEL_PRIORITY(key, factory, priority)               \
  static const bool SLIVER_CONCAT(sliver_registered_, __COUNTER__) =          \
      (::sliver::register_kernel(key, factory, priority), true)
