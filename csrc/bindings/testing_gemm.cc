// Test and benchmark hooks for the FP32 GEMM engine, registered into the `testing` submodule.
// Bindings only: argument conversion, no logic beyond choosing a kernel and a pool.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "sliver/cpu.h"
#include "sliver/gemm.h"
#include "sliver/thread_pool.h"

namespace py = pybind11;

namespace sliver {
namespace {

using F32Array = py::array_t<float, py::array::forcecast>;

Act parse_act(const std::string& s) {
  static const std::map<std::string, Act> kActs = {{"none", Act::none},
                                                   {"relu", Act::relu},
                                                   {"clip", Act::clip},
                                                   {"leaky_relu", Act::leaky_relu},
                                                   {"sigmoid", Act::sigmoid},
                                                   {"hard_sigmoid", Act::hard_sigmoid},
                                                   {"hard_swish", Act::hard_swish},
                                                   {"tanh", Act::tanh},
                                                   {"gelu_erf", Act::gelu_erf},
                                                   {"gelu_tanh", Act::gelu_tanh}};
  auto it = kActs.find(s);
  if (it == kActs.end()) throw std::invalid_argument("unknown activation: " + s);
  return it->second;
}

// One pool per thread count, kept for the process (pools are costly to start).
ThreadPool* pool_for(int n) {
  static std::mutex mu;
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  std::lock_guard<std::mutex> lock(mu);
  auto& p = pools[n];
  if (!p) p = std::make_unique<ThreadPool>(n);
  return p.get();
}

const F32GemmKernel& kernel_named(const std::string& name) {
  if (name.empty()) return f32_gemm_kernel();
  const F32GemmKernel* k = find_f32_gemm_kernel(name);
  if (!k) throw std::invalid_argument("no compiled f32 gemm kernel named " + name);
  if (!isa_usable(k->isa)) throw std::invalid_argument(name + " needs an ISA this CPU lacks");
  return *k;
}

// A 2-D float32 matrix whose rows may be strided (a slice of a wider array keeps its row stride,
// so tests exercise ld > cols); anything else is copied to a contiguous array first.
struct Mat {
  F32Array arr;
  const float* data = nullptr;
  int64_t rows = 0, cols = 0, ld = 0;
};

Mat to_mat(const py::handle& h, const char* what) {
  Mat m;
  py::array raw = py::array::ensure(h);
  if (!raw || raw.ndim() != 2) throw std::invalid_argument(std::string(what) + " must be 2-D");
  m.arr = raw.dtype().is(py::dtype::of<float>()) ? py::reinterpret_borrow<F32Array>(raw)
                                                 : F32Array::ensure(raw);
  m.rows = m.arr.shape(0);
  m.cols = m.arr.shape(1);
  const auto s0 = m.arr.strides(0), s1 = m.arr.strides(1);
  const bool row_strided = (s1 == 4 || m.cols <= 1) && s0 % 4 == 0 && s0 / 4 >= m.cols;
  if (!row_strided) {
    m.arr = F32Array(py::array::ensure(m.arr, py::array::c_style | py::array::forcecast));
    m.ld = m.cols;
  } else {
    m.ld = m.rows <= 1 ? std::max<int64_t>(m.cols, s0 / 4) : s0 / 4;
  }
  m.ld = std::max<int64_t>(m.ld, 1);
  m.data = m.arr.data();
  return m;
}

std::vector<float> to_vec(const py::object& o, int64_t n, const char* what) {
  auto arr = F32Array::ensure(o);
  if (!arr || arr.size() != n)
    throw std::invalid_argument(std::string(what) + " must have " + std::to_string(n) + " values");
  auto c = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(arr);
  return std::vector<float>(c.data(), c.data() + n);
}

// Fixed operands and output for repeated timed runs (no allocation per run).
class SgemmProblem {
 public:
  SgemmProblem(const py::object& a, const py::object& b, bool trans_a, bool trans_b, bool pa,
               bool pb, int num_threads, const std::string& kernel)
      : kern_(kernel_named(kernel)), pool_(pool_for(num_threads)) {
    A_ = to_mat(a, "a");
    B_ = to_mat(b, "b");
    M_ = trans_a ? A_.cols : A_.rows;
    K_ = trans_a ? A_.rows : A_.cols;
    N_ = trans_b ? B_.rows : B_.cols;
    if ((trans_b ? B_.cols : B_.rows) != K_) throw std::invalid_argument("inner sizes differ");
    a_ = {A_.data, A_.ld, trans_a, nullptr};
    b_ = {B_.data, B_.ld, trans_b, nullptr};
    if (pa) {
      packed_a_ = detail::pack_a(kern_, M_, K_, A_.data, A_.ld, trans_a);
      a_.packed = packed_a_.get();
    }
    if (pb) {
      packed_b_ = detail::pack_b(kern_, K_, N_, B_.data, B_.ld, trans_b);
      b_.packed = packed_b_.get();
    }
    c_ = F32Array({M_, N_});
  }
  void run() {
    py::gil_scoped_release release;
    detail::f32_gemm(kern_, M_, N_, K_, a_, b_, c_.mutable_data(), N_, ep_, pool_, 0.f);
  }
  F32Array c() const { return c_; }
  double flops() const { return 2.0 * M_ * N_ * K_; }

 private:
  const F32GemmKernel& kern_;
  ThreadPool* pool_;
  Mat A_, B_;
  int64_t M_ = 0, N_ = 0, K_ = 0;
  GemmOperandA a_;
  GemmOperandB b_;
  std::shared_ptr<PackedA> packed_a_;
  std::shared_ptr<PackedB> packed_b_;
  Epilogue ep_;
  F32Array c_;
};

// Seconds of CPU time used by the calling thread: immune to other processes taking the core,
// which wall-clock timing on a shared 2-core machine is not.
double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// Micro-kernel alone: full MR x NR tiles over packed panels of depth kc (L1/L2 resident), the
// best of `repeats` timings (thread CPU time) of `calls` calls. Returns GFLOPS.
double ukernel_gflops(const std::string& name, int64_t kc, int64_t calls, int repeats) {
  const F32GemmKernel& k = kernel_named(name);
  std::vector<float> bufa(kc * k.mr + 64, 0.5f), c(k.mr * k.nr, 0.f);
  std::shared_ptr<PackedB> pb;
  std::vector<float> bsrc(kc * k.nr, 0.25f);
  pb = detail::pack_b(k, kc, k.nr, bsrc.data(), k.nr, false);
  F32GemmUkernelArgs args{};
  args.mr = k.mr;
  args.nr = k.nr;
  args.kc = kc;
  args.panels = 1;
  args.a = bufa.data();
  args.a_row_stride = 0;
  args.b = pb->panel(0);
  args.b_k_stride = k.nr;
  args.c = c.data();
  args.ldc = k.nr;
  args.c_scale = 0.f;
  py::gil_scoped_release release;
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const double t0 = thread_cpu_seconds();
    for (int64_t i = 0; i < calls; ++i) k.fn(args);
    best = std::min(best, thread_cpu_seconds() - t0);
  }
  return 2.0 * k.mr * k.nr * kc * calls / best * 1e-9;
}

}  // namespace

void register_gemm_testing(py::module_& m) {
  m.def(
      "cpu_features",
      [](bool detected) {
        py::dict d;
        for (auto& [name, on] :
             cpu_feature_list(detected ? detected_cpu_features() : cpu_features()))
          d[py::str(name)] = on;
        return d;
      },
      py::arg("detected") = false,
      "CPU features used for dispatch (after SLIVER_ISA), or as detected.");
  m.def("selected_kernels", &selected_kernels, "Kernel family -> chosen kernel name.");
  m.def(
      "f32_gemm_kernels",
      [] {
        py::list out;
        for (const F32GemmKernel* k : f32_gemm_kernels()) {
          py::dict d;
          d["name"] = k->name;
          d["mr"] = k->mr;
          d["nr"] = k->nr;
          d["isa"] = k->isa;
          d["usable"] = isa_usable(k->isa);
          out.append(d);
        }
        return out;
      },
      "Compiled FP32 GEMM micro-kernels (f32_gemm.inc order) and whether this CPU can run them.");

  m.def(
      "sgemm",
      [](const py::object& a, const py::object& b, bool trans_a, bool trans_b, bool pack_a_,
         bool pack_b_, const py::object& bias, bool bias_per_row, const std::string& act,
         float alpha, float beta, const py::object& residual, const std::string& post_act,
         float post_alpha, float post_beta, const py::object& c, float beta_c, int64_t ldc,
         int num_threads, const std::string& kernel) {
        const F32GemmKernel& kern = kernel_named(kernel);
        Mat A = to_mat(a, "a"), B = to_mat(b, "b");
        const int64_t M = trans_a ? A.cols : A.rows, K = trans_a ? A.rows : A.cols;
        const int64_t N = trans_b ? B.rows : B.cols;
        if ((trans_b ? B.cols : B.rows) != K) throw std::invalid_argument("inner sizes differ");
        if (ldc == 0) ldc = N;
        if (ldc < N) throw std::invalid_argument("ldc < N");
        // Output (M, ldc): the columns past N are guard values the kernel must not touch.
        F32Array out({M, ldc});
        float* C = out.mutable_data();
        std::fill(C, C + M * ldc, 1234.5f);
        if (!c.is_none()) {
          Mat C0 = to_mat(c, "c");
          if (C0.rows != M || C0.cols != N) throw std::invalid_argument("c must be M x N");
          for (int64_t i = 0; i < M; ++i)
            std::memcpy(C + i * ldc, C0.data + i * C0.ld, N * sizeof(float));
        }
        Epilogue ep;
        std::vector<float> bias_v;
        if (!bias.is_none()) {
          bias_v = to_vec(bias, bias_per_row ? M : N, "bias");
          ep.bias = bias_v.data();
        }
        ep.bias_per_row = bias_per_row;
        ep.act = parse_act(act);
        ep.alpha = alpha;
        ep.beta = beta;
        Mat R;
        if (!residual.is_none()) {
          R = to_mat(residual, "residual");
          if (R.rows != M || R.cols != N) throw std::invalid_argument("residual must be M x N");
          ep.residual = R.data;
          ep.ld_residual = R.ld;
        }
        ep.post_act = parse_act(post_act);
        ep.post_alpha = post_alpha;
        ep.post_beta = post_beta;
        GemmOperandA oa{A.data, A.ld, trans_a, nullptr};
        GemmOperandB ob{B.data, B.ld, trans_b, nullptr};
        std::shared_ptr<PackedA> pa;
        std::shared_ptr<PackedB> pb;
        if (pack_a_) oa.packed = (pa = detail::pack_a(kern, M, K, A.data, A.ld, trans_a)).get();
        if (pack_b_) ob.packed = (pb = detail::pack_b(kern, K, N, B.data, B.ld, trans_b)).get();
        ThreadPool* pool = pool_for(num_threads);
        {
          py::gil_scoped_release release;
          detail::f32_gemm(kern, M, N, K, oa, ob, C, ldc, ep, pool, beta_c);
        }
        return out;
      },
      py::arg("a"), py::arg("b"), py::kw_only(), py::arg("trans_a") = false,
      py::arg("trans_b") = false, py::arg("pack_a") = false, py::arg("pack_b") = false,
      py::arg("bias") = py::none(), py::arg("bias_per_row") = false, py::arg("act") = "none",
      py::arg("alpha") = 0.f, py::arg("beta") = 0.f, py::arg("residual") = py::none(),
      py::arg("post_act") = "none", py::arg("post_alpha") = 0.f, py::arg("post_beta") = 0.f,
      py::arg("c") = py::none(), py::arg("beta_c") = 0.f, py::arg("ldc") = 0,
      py::arg("num_threads") = 1, py::arg("kernel") = "",
      "C = epilogue(op(a) @ op(b) + beta_c * c); returns the (M, ldc) buffer, columns >= N being "
      "guard values (1234.5). kernel='' uses the dispatched micro-kernel.");

  py::class_<SgemmProblem>(m, "SgemmProblem",
                           "Fixed operands (optionally pre-packed) and output for timed runs.")
      .def(py::init<const py::object&, const py::object&, bool, bool, bool, bool, int,
                    const std::string&>(),
           py::arg("a"), py::arg("b"), py::kw_only(), py::arg("trans_a") = false,
           py::arg("trans_b") = false, py::arg("pack_a") = false, py::arg("pack_b") = false,
           py::arg("num_threads") = 1, py::arg("kernel") = "")
      .def("run", &SgemmProblem::run, "Computes C (GIL released).")
      .def_property_readonly("c", &SgemmProblem::c)
      .def_property_readonly("flops", &SgemmProblem::flops);

  m.def(
      "thread_pool_check",
      [](int num_threads, int64_t n, bool tasks, int64_t throw_at, bool nested) {
        ThreadPool* pool = pool_for(num_threads);
        std::unique_ptr<std::atomic<int64_t>[]> hits(new std::atomic<int64_t>[n > 0 ? n : 1]);
        for (int64_t i = 0; i < n; ++i) hits[i] = 0;
        std::mutex mu;
        std::vector<std::pair<int64_t, int64_t>> ranges;
        auto body = [&](int64_t i) {
          if (i == throw_at) throw std::runtime_error("task " + std::to_string(i) + " failed");
          if (nested) {  // must run inline, not deadlock
            std::atomic<int64_t> inner{0};
            pool->parallel_for(8, [&](int64_t b, int64_t e) { inner += e - b; });
            if (inner != 8) throw std::logic_error("nested parallel_for lost work");
          }
          ++hits[i];
        };
        {
          py::gil_scoped_release release;
          if (tasks) {
            pool->parallel_tasks(n, body);
          } else {
            pool->parallel_for(n, [&](int64_t b, int64_t e) {
              {
                std::lock_guard<std::mutex> lock(mu);
                ranges.emplace_back(b, e);
              }
              for (int64_t i = b; i < e; ++i) body(i);
            });
          }
        }
        std::vector<int64_t> counts(n);
        for (int64_t i = 0; i < n; ++i) counts[i] = hits[i];
        std::sort(ranges.begin(), ranges.end());
        return py::make_tuple(counts, ranges);
      },
      py::arg("num_threads"), py::arg("n"), py::kw_only(), py::arg("tasks") = false,
      py::arg("throw_at") = -1, py::arg("nested") = false,
      "Runs n counting tasks on a pool; returns (hits per index, parallel_for ranges). A task "
      "whose index is throw_at throws.");

  m.def("ukernel_gflops", &ukernel_gflops, py::arg("kernel"), py::arg("kc") = 256,
        py::arg("calls") = 20000, py::arg("repeats") = 5,
        "GFLOPS of one micro-kernel alone on full tiles over L1-resident packed panels.");
}

}  // namespace sliver
