// pybind11 bindings: conversions and plumbing only, no logic.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "convert.h"
#include "sliver/cpu.h"
#include "sliver/executor.h"
#include "sliver/kernel.h"
#include "sliver/thread_pool.h"

namespace py = pybind11;
using namespace sliver;

namespace {

// A node run by Python (the documented fallback for ops with no native kernel,
// and control flow whose bodies are plans of their own).
class PythonKernel final : public Kernel {
 public:
  explicit PythonKernel(py::object fn) : fn_(std::move(fn)) {}
  ~PythonKernel() override {
    py::gil_scoped_acquire gil;
    fn_ = py::object();
  }

  void run(RunContext&, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    py::gil_scoped_acquire gil;
    py::tuple args(in.size());
    for (size_t i = 0; i < in.size(); ++i)
      args[i] = in[i] ? py_convert::to_python(*in[i], /*readonly=*/true) : py::none();
    py::object res;
    try {
      res = fn_(*args);
    } catch (py::error_already_set& e) {
      // Keep the node context the executor adds; the Python type is in the text.
      std::string msg = e.what();
      throw Error(msg);
    }
    py::sequence seq = py::reinterpret_borrow<py::sequence>(res);
    if (seq.size() < out.size())
      fail("fallback returned ", seq.size(), " outputs, expected ", out.size());
    for (size_t i = 0; i < out.size(); ++i) {
      py::object v = seq[i];
      out[i] = py_convert::to_tensor(v);
    }
  }
  std::string describe() const override { return "python"; }

 private:
  py::object fn_;
};

struct KernelHandle {
  std::shared_ptr<Kernel> kernel;
};

AttrValue to_attr(const py::handle& v) {
  if (py::isinstance<py::bool_>(v) || py::isinstance<py::int_>(v)) return v.cast<int64_t>();
  if (py::isinstance<py::float_>(v)) return v.cast<double>();
  if (py::isinstance<py::str>(v)) return v.cast<std::string>();
  if (py::isinstance<py::bytes>(v)) return std::string(v.cast<py::bytes>());
  if (py::isinstance<py::array>(v)) return py_convert::to_tensor(v);
  if (py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v)) {
    py::sequence s = py::reinterpret_borrow<py::sequence>(v);
    bool all_int = true, all_str = true;
    for (auto item : s) {
      all_int &= py::isinstance<py::int_>(item);
      all_str &= py::isinstance<py::str>(item) || py::isinstance<py::bytes>(item);
    }
    if (s.size() && all_str) {
      std::vector<std::string> out;
      for (auto item : s) out.push_back(py::isinstance<py::bytes>(item) ? std::string(item.cast<py::bytes>()) : item.cast<std::string>());
      return out;
    }
    if (all_int) return s.cast<std::vector<int64_t>>();
    return s.cast<std::vector<double>>();
  }
  throw Error("unsupported attribute value");
}

StaticShape to_static_shape(const py::handle& v) {
  StaticShape s;
  if (v.is_none()) return s;
  s.known = true;
  for (auto d : v) s.dims.push_back(d.is_none() ? -1 : d.cast<int64_t>());
  return s;
}

}  // namespace

namespace sliver {
void register_gemm_testing(py::module_& m);
void register_qgemm_testing(py::module_& m);
void register_sparse_testing(py::module_& m);
void register_q8_vbinary_testing(py::module_& m);
}  // namespace sliver

PYBIND11_MODULE(_C, m) {
  m.doc() = "sliver native core: kernels and the step-list executor";

  static py::exception<Error> sliver_error(m, "NativeError", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      py::set_error(sliver_error, e.what());
    }
  });

  py::class_<KernelHandle>(m, "Kernel")
      .def("describe", [](const KernelHandle& k) { return k.kernel->describe(); })
      .def("weight_bytes", [](const KernelHandle& k) { return k.kernel->weight_bytes(); });

  m.def(
      "create_kernel",
      [](const std::string& op_type, const std::string& domain, const std::string& node_name,
         int opset, const py::dict& attrs, const std::vector<int>& input_dtypes,
         const py::list& input_shapes, const py::list& const_inputs,
         const std::vector<int>& output_dtypes, const py::list& output_shapes,
         const std::map<std::string, std::string>& config) -> py::object {
        KernelInit init;
        init.op_type = op_type;
        init.domain = domain;
        init.node_name = node_name;
        init.opset = opset;
        init.config = config;
        for (auto kv : attrs) init.attrs.values[kv.first.cast<std::string>()] = to_attr(kv.second);
        for (int d : input_dtypes) init.input_dtypes.push_back(static_cast<DType>(d));
        for (int d : output_dtypes) init.output_dtypes.push_back(static_cast<DType>(d));
        for (auto s : input_shapes) init.input_shapes.push_back(to_static_shape(s));
        for (auto s : output_shapes) init.output_shapes.push_back(to_static_shape(s));
        for (auto c : const_inputs)
          init.const_inputs.push_back(c.is_none() ? Tensor{} : py_convert::to_tensor(c));
        std::unique_ptr<Kernel> k = create_kernel(init);
        if (!k) return py::none();
        return py::cast(KernelHandle{std::shared_ptr<Kernel>(std::move(k))});
      },
      "Native kernel for a node, or None when no native kernel accepts it.", py::arg("op_type"),
      py::arg("domain"), py::arg("node_name"), py::arg("opset"), py::arg("attrs"),
      py::arg("input_dtypes"), py::arg("input_shapes"), py::arg("const_inputs"),
      py::arg("output_dtypes"), py::arg("output_shapes"),
      py::arg("config") = std::map<std::string, std::string>{});

  m.def(
      "python_kernel",
      [](py::object fn) { return KernelHandle{std::make_shared<PythonKernel>(std::move(fn))}; },
      "Wraps a Python callable f(*inputs) -> sequence of outputs as a step kernel.");

  m.def("registered_kernels", &registered_kernels);

  m.def(
      "cpu_info",
      []() {
        py::dict d;
        for (auto& [name, on] : cpu_feature_list(detected_cpu_features())) d[py::str(name)] = on;
        py::dict used;
        for (auto& [name, on] : cpu_feature_list(cpu_features())) used[py::str(name)] = on;
        py::dict kernels;
        for (auto& [family, name] : selected_kernels()) kernels[py::str(family)] = name;
        d["dispatch"] = used;
        d["kernels"] = kernels;
        return d;
      },
      "CPU features detected, those dispatch uses (SLIVER_ISA may mask), and chosen kernels.");

  // Direct access to kernels for the tests and benchmarks; not a public API.
  py::module_ testing = m.def_submodule("testing", "kernel entry points for tests and benchmarks");
  register_gemm_testing(testing);
  register_qgemm_testing(testing);
  register_sparse_testing(testing);
  register_q8_vbinary_testing(testing);

  py::class_<ThreadPool, std::shared_ptr<ThreadPool>>(m, "ThreadPool")
      .def(py::init<int>(), py::arg("num_threads"))
      .def_property_readonly("num_threads", &ThreadPool::num_threads);

  py::class_<Plan, std::shared_ptr<Plan>>(m, "Plan")
      .def(py::init<int>())
      .def("bind_constant",
           [](Plan& p, int slot, py::object value) {
             p.bind_constant(slot, py_convert::to_tensor(value));
           })
      .def("add_step",
           [](Plan& p, std::string node_name, std::string op_type, std::vector<int> inputs,
              std::vector<int> outputs, const KernelHandle& k, std::vector<int> release) {
             p.add_step(Step{std::move(node_name), std::move(op_type), std::move(inputs),
                             std::move(outputs), k.kernel, std::move(release)});
           })
      .def("set_inputs", &Plan::set_inputs)
      .def("set_outputs", &Plan::set_outputs)
      .def("num_steps", [](const Plan& p) { return p.steps().size(); })
      .def("step_weight_bytes",
           [](const Plan& p) {
             std::vector<int64_t> v;
             for (const Step& s : p.steps()) v.push_back(s.kernel->weight_bytes());
             return v;
           })
      .def("set_memory_planning", &Plan::set_memory_planning)
      .def("memory_stats",
           [](const Plan& p) {
             MemoryStats s = p.memory_stats();
             py::dict d;
             d["arena_bytes"] = s.arena_bytes;
             d["planned_blocks"] = s.planned_blocks;
             d["heap_allocs"] = s.heap_allocs;
             d["replayed"] = s.replayed;
             return d;
           })
      .def(
          "run",
          [](const Plan& p, const py::list& feeds, const std::vector<int>& wanted,
             std::shared_ptr<ThreadPool> pool, bool profile) -> py::object {
            std::vector<Tensor> in;
            in.reserve(feeds.size());
            for (auto f : feeds) in.push_back(py_convert::to_tensor(f));
            std::vector<Tensor> out;
            std::vector<StepProfile> prof;
            {
              py::gil_scoped_release nogil;
              out = p.run(std::move(in), wanted, pool.get(), profile ? &prof : nullptr);
            }
            py::list res;
            for (auto& t : out) res.append(py_convert::to_python(t));
            if (!profile) return std::move(res);
            py::list times;
            for (auto& s : prof) times.append(s.seconds);
            return py::make_tuple(res, times);
          },
          py::arg("feeds"), py::arg("wanted"), py::arg("pool") = nullptr,
          py::arg("profile") = false);
}
