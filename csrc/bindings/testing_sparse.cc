// Test and benchmark hooks for the sparse-weight engine (sparse.h), registered into the
// `testing` submodule by register_sparse_testing. Bindings only: argument conversion, plus the
// dense counterparts (f32_gemm / qgemm on the same operands) that benchmarks compare against.
//
// Orientation: layout "left" means W is [out, in] and X is [in, cols] (Conv: Y = W X);
// "right" means W is [in, out] (a MatMul's B) and X is [cols, in] (Y = X W).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <time.h>

#include "sliver/gemm.h"
#include "sliver/qgemm.h"
#include "sliver/sparse.h"
#include "sliver/thread_pool.h"

namespace py = pybind11;

namespace sliver {
namespace {

using F32Array = py::array_t<float, py::array::c_style | py::array::forcecast>;
using I32Array = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;

constexpr float kGuardF32 = 1234.5f;
constexpr uint8_t kGuardByte = 0xA5;

ThreadPool* pool_for(int n) {
  static std::mutex mu;
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  std::lock_guard<std::mutex> lock(mu);
  auto& p = pools[n];
  if (!p) p = std::make_unique<ThreadPool>(n);
  return p.get();
}

Act parse_act(const std::string& s) {
  static const std::map<std::string, Act> kActs = {
      {"none", Act::none},         {"relu", Act::relu},
      {"clip", Act::clip},         {"leaky_relu", Act::leaky_relu},
      {"sigmoid", Act::sigmoid},   {"hard_sigmoid", Act::hard_sigmoid},
      {"hard_swish", Act::hard_swish}, {"tanh", Act::tanh},
      {"gelu_erf", Act::gelu_erf}, {"gelu_tanh", Act::gelu_tanh}};
  auto it = kActs.find(s);
  if (it == kActs.end()) throw std::invalid_argument("unknown activation: " + s);
  return it->second;
}

bool parse_left(const std::string& layout) {
  if (layout == "left") return true;
  if (layout == "right") return false;
  throw std::invalid_argument("layout must be 'left' or 'right', got " + layout);
}

py::array require_2d(const py::handle& h, const char* what) {
  py::array a = py::array::ensure(h, py::array::c_style);
  if (!a || a.ndim() != 2) throw std::invalid_argument(std::string(what) + " must be 2-D");
  return a;
}

DType int8_type(const py::array& a, const char* what) {
  if (a.dtype().is(py::dtype::of<uint8_t>())) return DType::u8;
  if (a.dtype().is(py::dtype::of<int8_t>())) return DType::i8;
  throw std::invalid_argument(std::string(what) + " must be uint8 or int8");
}

py::dict info_dict(const SparsityInfo& s) {
  py::dict d;
  d["out"] = s.out;
  d["in"] = s.in;
  d["nnz"] = s.nnz;
  d["density"] = s.density;
  d["empty_rows"] = s.empty_rows;
  d["empty_cols"] = s.empty_cols;
  d["blocks_rx1"] = std::vector<int64_t>(s.blocks_rx1, s.blocks_rx1 + 4);
  d["blocks_1xc"] = std::vector<int64_t>(s.blocks_1xc, s.blocks_1xc + 4);
  d["block_rows"] = s.block_rows;
  d["block_cols"] = s.block_cols;
  return d;
}

// W viewed as [out, in]: strides in elements for either layout of a C-contiguous 2-D array.
struct WView {
  int64_t out, in, s_out, s_in;
};
WView view_of(const py::array& w, bool left) {
  const int64_t r = w.shape(0), c = w.shape(1);
  return left ? WView{r, c, c, 1} : WView{c, r, 1, c};
}

std::vector<int32_t> zero_points(const py::object& zp, int64_t out, bool* per_channel) {
  if (zp.is_none()) {
    *per_channel = false;
    return {0};
  }
  I32Array a = I32Array::ensure(zp);
  if (!a) throw std::invalid_argument("zero_point must be an int or int array");
  if (a.size() == 1 && a.ndim() == 0) {
    *per_channel = false;
    return {a.data()[0]};
  }
  if (a.size() != out) throw std::invalid_argument("zero_point must have 1 or out values");
  *per_channel = true;
  return std::vector<int32_t>(a.data(), a.data() + out);
}

// ---- FP32 ----

struct F32Packed {
  std::shared_ptr<SparseF32Weights> w;
  bool left;
};

struct F32Call {
  Epilogue ep;
  std::vector<float> bias;
  F32Array residual;
};

F32Packed pack_f32(const py::object& w_obj, const std::string& layout, int block_rows,
                   int64_t kc, int64_t cols) {
  const bool left = parse_left(layout);
  F32Array w = F32Array::ensure(require_2d(w_obj, "w"));
  const WView v = view_of(w, left);
  SparsePackOptions opt;
  opt.block_rows = block_rows;
  opt.kc = kc;
  opt.cols = cols;
  return {pack_sparse_f32(v.out, v.in, w.data(), v.s_out, v.s_in, opt), left};
}

// cols and the X stride from X's shape for the packed weight's layout.
void x_dims(const py::array& x, bool left, int64_t in, int64_t* cols) {
  const int64_t kdim = left ? x.shape(0) : x.shape(1);
  if (kdim != in)
    throw std::invalid_argument("x has " + std::to_string(kdim) + " inputs, weights expect " +
                                std::to_string(in));
  *cols = left ? x.shape(1) : x.shape(0);
}

py::array f32_spmm_call(const F32Packed& pk, const py::object& x_obj, const py::object& bias,
                        const std::string& act, float alpha, float beta,
                        const py::object& residual, const std::string& post_act,
                        float post_alpha, float post_beta, int64_t ld_extra, int num_threads,
                        bool force_scalar, int tile) {
  const SparseF32Weights& W = *pk.w;
  F32Array x = F32Array::ensure(require_2d(x_obj, "x"));
  int64_t cols;
  x_dims(x, pk.left, W.in, &cols);
  const int64_t rows = pk.left ? W.out : cols, ycols = pk.left ? cols : W.out;
  const int64_t ldy = ycols + ld_extra;
  // Output with guard columns past each row and one guard row after the last.
  F32Array out({rows + 1, ldy});
  std::fill(out.mutable_data(), out.mutable_data() + (rows + 1) * ldy, kGuardF32);
  Epilogue ep;
  ep.bias_per_row = pk.left;
  std::vector<float> bias_v;
  if (!bias.is_none()) {
    F32Array b = F32Array::ensure(bias);
    if (b.size() != W.out) throw std::invalid_argument("bias must have out values");
    bias_v.assign(b.data(), b.data() + W.out);
    ep.bias = bias_v.data();
  }
  ep.act = parse_act(act);
  ep.alpha = alpha;
  ep.beta = beta;
  F32Array res;
  if (!residual.is_none()) {
    res = F32Array::ensure(require_2d(residual, "residual"));
    if (res.shape(0) != rows || res.shape(1) != ycols)
      throw std::invalid_argument("residual must match the output shape");
    ep.residual = res.data();
    ep.ld_residual = ycols;
  }
  ep.post_act = parse_act(post_act);
  ep.post_alpha = post_alpha;
  ep.post_beta = post_beta;
  SpmmOptions opt;
  opt.force_scalar = force_scalar;
  opt.tile = tile;
  ThreadPool* pool = pool_for(num_threads);
  {
    py::gil_scoped_release release;
    if (pk.left)
      f32_spmm_left(W, cols, x.data(), cols, out.mutable_data(), ldy, ep, pool, opt);
    else
      f32_spmm_right(W, cols, x.data(), W.in, out.mutable_data(), ldy, ep, pool, opt);
  }
  return out;
}

// Fixed operands and output for timed runs: sparse, or the dense GEMM on the same weights.
class F32Problem {
 public:
  F32Problem(const py::object& w_obj, const py::object& x_obj, const std::string& layout,
             bool sparse, int num_threads, int block_rows, int kr, int64_t kc, bool force_scalar,
             int tile)
      : left_(parse_left(layout)), sparse_(sparse), pool_(pool_for(num_threads)) {
    w_ = F32Array::ensure(require_2d(w_obj, "w"));
    x_ = F32Array::ensure(require_2d(x_obj, "x"));
    const WView v = view_of(w_, left_);
    out_ = v.out;
    in_ = v.in;
    x_dims(x_, left_, in_, &cols_);
    opt_.force_scalar = force_scalar;
    opt_.tile = tile;
    ep_.bias_per_row = left_;
    y_ = F32Array({left_ ? out_ : cols_, left_ ? cols_ : out_});
    if (sparse_) {
      SparsePackOptions po;
      po.block_rows = block_rows;
      po.kc = kc;
      po.cols = cols_;
      (void)kr;
      sw_ = pack_sparse_f32(out_, in_, w_.data(), v.s_out, v.s_in, po);
    } else if (left_) {
      pa_ = pack_a(out_, in_, w_.data(), in_, false);  // W [out, in] is the GEMM's A
    } else {
      pb_ = pack_b(in_, out_, w_.data(), out_, false);  // W [in, out] is the GEMM's B
    }
  }
  void run() {
    py::gil_scoped_release release;
    run_nogil();
  }
  void run_nogil() {
    float* y = y_.mutable_data();
    if (sparse_) {
      if (left_) f32_spmm_left(*sw_, cols_, x_.data(), cols_, y, cols_, ep_, pool_, opt_);
      else f32_spmm_right(*sw_, cols_, x_.data(), in_, y, out_, ep_, pool_, opt_);
    } else if (left_) {
      GemmOperandA a{nullptr, 0, false, pa_.get()};
      GemmOperandB b{x_.data(), cols_, false, nullptr};
      f32_gemm(out_, cols_, in_, a, b, y, cols_, ep_, pool_);
    } else {
      GemmOperandA a{x_.data(), in_, false, nullptr};
      GemmOperandB b{nullptr, 0, false, pb_.get()};
      f32_gemm(cols_, out_, in_, a, b, y, out_, ep_, pool_);
    }
  }
  F32Array y() const { return y_; }
  double dense_macs() const { return static_cast<double>(out_) * in_ * cols_; }
  py::object packed() const {
    if (!sw_) return py::none();
    return py::cast(F32Packed{sw_, left_});
  }

 private:
  bool left_, sparse_;
  ThreadPool* pool_;
  F32Array w_, x_, y_;
  int64_t out_ = 0, in_ = 0, cols_ = 0;
  SpmmOptions opt_;
  Epilogue ep_;
  std::shared_ptr<SparseF32Weights> sw_;
  std::shared_ptr<PackedA> pa_;
  std::shared_ptr<PackedB> pb_;
};

// ---- INT8 ----

struct Q8Packed {
  std::shared_ptr<SparseQ8Weights> w;
  bool left;
};

Q8Packed pack_q8(const py::object& w_obj, const std::string& layout, const py::object& zp,
                 int block_rows, int kr, int64_t kc, int64_t cols) {
  const bool left = parse_left(layout);
  py::array w = require_2d(w_obj, "w");
  const DType t = int8_type(w, "w");
  const WView v = view_of(w, left);
  bool per_channel = false;
  const std::vector<int32_t> zps = zero_points(zp, v.out, &per_channel);
  SparsePackOptions opt;
  opt.block_rows = block_rows;
  opt.kr = kr;
  opt.kc = kc;
  opt.cols = cols;
  return {pack_sparse_q8(v.out, v.in, w.data(), t, v.s_out, v.s_in, zps.data(), per_channel, opt),
          left};
}

QGemmOutput parse_output(const std::string& s) {
  if (s == "int32") return QGemmOutput::int32;
  if (s == "quantized") return QGemmOutput::quantized;
  if (s == "float32") return QGemmOutput::float32;
  throw std::invalid_argument("output must be int32, quantized or float32");
}

RequantRounding parse_rounding(const std::string& s) {
  if (s == "onnx_reference") return RequantRounding::onnx_reference;
  if (s == "onnxruntime") return RequantRounding::onnxruntime;
  throw std::invalid_argument("rounding must be onnx_reference or onnxruntime");
}

py::array q8_spmm_call(const Q8Packed& pk, const py::object& x_obj, int32_t x_zero_point,
                       const std::string& output, const py::object& bias, float a_scale,
                       const py::object& b_scale, float y_scale, int32_t y_zero_point,
                       const std::string& y_type, const py::object& qmin,
                       const py::object& qmax, const std::string& rounding,
                       const py::object& float_bias, int64_t ld_extra, int num_threads,
                       bool force_scalar, int tile) {
  const SparseQ8Weights& W = *pk.w;
  py::array x = require_2d(x_obj, "x");
  int64_t cols;
  x_dims(x, pk.left, W.in, &cols);
  QGemmArgs a;
  a.M = cols;
  a.a = x.data();
  a.a_type = int8_type(x, "x");
  a.lda = pk.left ? cols : W.in;
  a.a_zero_point = x_zero_point;
  a.output = parse_output(output);
  std::vector<int32_t> bias_v;
  if (!bias.is_none()) {
    I32Array b = I32Array::ensure(bias);
    if (b.size() != W.out) throw std::invalid_argument("bias must have out values");
    bias_v.assign(b.data(), b.data() + W.out);
    a.bias = bias_v.data();
  }
  a.a_scale = a_scale;
  std::vector<float> bs;
  if (!b_scale.is_none()) {
    F32Array s = F32Array::ensure(b_scale);
    bs.assign(s.data(), s.data() + s.size());
    if (bs.size() != 1 && static_cast<int64_t>(bs.size()) != W.out)
      throw std::invalid_argument("b_scale must have 1 or out values");
    a.b_scale = bs.data();
    a.b_scale_per_column = bs.size() > 1;
  }
  a.y_scale = y_scale;
  a.y_zero_point = y_zero_point;
  a.y_type = y_type == "u8" ? DType::u8 : y_type == "i8" ? DType::i8 : DType::undefined;
  if (a.output == QGemmOutput::quantized && a.y_type == DType::undefined)
    throw std::invalid_argument("y_type must be u8 or i8");
  const int32_t lo = a.y_type == DType::i8 ? -128 : 0;
  a.qmin = qmin.is_none() ? lo : qmin.cast<int32_t>();
  a.qmax = qmax.is_none() ? lo + 255 : qmax.cast<int32_t>();
  a.rounding = parse_rounding(rounding);
  std::vector<float> fb;
  if (!float_bias.is_none()) {
    F32Array f = F32Array::ensure(float_bias);
    if (f.size() != W.out) throw std::invalid_argument("float_bias must have out values");
    fb.assign(f.data(), f.data() + W.out);
    a.float_bias = fb.data();
  }
  const int64_t rows = pk.left ? W.out : cols, ycols = pk.left ? cols : W.out;
  const int64_t ldy = ycols + ld_extra;
  py::array out;
  if (a.output == QGemmOutput::int32) out = py::array_t<int32_t>({rows + 1, ldy});
  else if (a.output == QGemmOutput::float32) out = py::array_t<float>({rows + 1, ldy});
  else if (a.y_type == DType::u8) out = py::array_t<uint8_t>({rows + 1, ldy});
  else out = py::array_t<int8_t>({rows + 1, ldy});
  std::memset(out.mutable_data(), kGuardByte, out.nbytes());
  a.c = out.mutable_data();
  a.ldc = ldy;
  SpmmOptions opt;
  opt.force_scalar = force_scalar;
  opt.tile = tile;
  ThreadPool* pool = pool_for(num_threads);
  {
    py::gil_scoped_release release;
    if (pk.left) q8_spmm_left(a, W, pool, opt);
    else q8_spmm_right(a, W, pool, opt);
  }
  return out;
}

// Timed INT8 runs (u8 X, s8 W, requantized u8 output): sparse, or dense qgemm with the same MAC
// count (a conv's dense INT8 path multiplies pixel rows by the weights, i.e. the right layout).
class Q8Problem {
 public:
  Q8Problem(const py::object& w_obj, const py::object& x_obj, const std::string& layout,
            bool sparse, int num_threads, int block_rows, int kr, int64_t kc, bool force_scalar,
            int tile)
      : left_(parse_left(layout)), sparse_(sparse), pool_(pool_for(num_threads)) {
    w_ = require_2d(w_obj, "w");
    x_ = require_2d(x_obj, "x");
    const DType wt = int8_type(w_, "w");
    const WView v = view_of(w_, left_);
    out_ = v.out;
    in_ = v.in;
    x_dims(x_, left_, in_, &cols_);
    opt_.force_scalar = force_scalar;
    opt_.tile = tile;
    const int32_t zp = 0;
    scale_.assign(static_cast<size_t>(out_), 0.01f);
    a_.M = cols_;
    a_.a_type = int8_type(x_, "x");
    a_.a_zero_point = a_.a_type == DType::u8 ? 128 : 0;
    a_.output = QGemmOutput::quantized;
    a_.a_scale = 0.02f;
    a_.b_scale = scale_.data();
    a_.b_scale_per_column = true;
    a_.y_scale = 0.05f;
    a_.y_zero_point = 128;
    a_.y_type = DType::u8;
    a_.qmin = 0;
    a_.qmax = 255;
    y_ = py::array_t<uint8_t>({out_ * cols_});
    a_.c = y_.mutable_data();
    if (sparse_) {
      SparsePackOptions po;
      po.block_rows = block_rows;
      po.kr = kr;
      po.kc = kc;
      po.cols = cols_;
      sw_ = pack_sparse_q8(out_, in_, w_.data(), wt, v.s_out, v.s_in, &zp, false, po);
      a_.a = x_.data();
      a_.lda = left_ ? cols_ : in_;
      a_.ldc = left_ ? cols_ : out_;
    } else {
      // qgemm wants X as [cols, in]: transpose a left-layout X once here.
      if (left_) {
        xt_ = py::array_t<uint8_t>({cols_, in_});
        const uint8_t* s = static_cast<const uint8_t*>(x_.data());
        uint8_t* d = static_cast<uint8_t*>(xt_.mutable_data());
        for (int64_t k = 0; k < in_; ++k)
          for (int64_t n = 0; n < cols_; ++n) d[n * in_ + k] = s[k * cols_ + n];
      }
      a_.a = left_ ? xt_.data() : x_.data();
      a_.lda = in_;
      a_.ldc = out_;
      pb_ = pack_q8_b(in_, out_, w_.data(), wt, left_ ? in_ : out_, left_, &zp, false);
    }
  }
  void run() {
    py::gil_scoped_release release;
    run_nogil();
  }
  void run_nogil() {
    if (!sparse_) qgemm(a_, *pb_, pool_);
    else if (left_) q8_spmm_left(a_, *sw_, pool_, opt_);
    else q8_spmm_right(a_, *sw_, pool_, opt_);
  }
  double dense_macs() const { return static_cast<double>(out_) * in_ * cols_; }
  py::array y() const { return y_; }
  py::object packed() const {
    if (!sw_) return py::none();
    return py::cast(Q8Packed{sw_, left_});
  }

 private:
  bool left_, sparse_;
  ThreadPool* pool_;
  py::array w_, x_, xt_, y_;
  int64_t out_ = 0, in_ = 0, cols_ = 0;
  std::vector<float> scale_;
  SpmmOptions opt_;
  QGemmArgs a_;
  std::shared_ptr<SparseQ8Weights> sw_;
  std::shared_ptr<PackedQ8B> pb_;
};

// Best time of one run over `repeats` batches (each batch long enough to time, >= min_seconds).
// Single-threaded problems use the thread's CPU time, which other processes on a shared machine
// do not inflate; multi-threaded ones use wall time.
double now_wall() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
double now_cpu() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

template <class P>
double best_seconds(P& p, int repeats, double min_seconds, bool cpu_time) {
  py::gil_scoped_release release;
  auto clock = cpu_time ? now_cpu : now_wall;
  p.run_nogil();
  int64_t batch = 1;
  for (;;) {
    const double t0 = clock();
    for (int64_t i = 0; i < batch; ++i) p.run_nogil();
    if (clock() - t0 >= min_seconds || batch >= (1 << 20)) break;
    batch *= 2;
  }
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const double t0 = clock();
    for (int64_t i = 0; i < batch; ++i) p.run_nogil();
    best = std::min(best, (clock() - t0) / static_cast<double>(batch));
  }
  return best;
}

template <class P>
void packed_props(py::class_<P>& c) {
  c.def_property_readonly("out", [](const P& p) { return p.w->out; })
      .def_property_readonly("in_", [](const P& p) { return p.w->in; })
      .def_property_readonly("block", [](const P& p) { return p.w->block; })
      .def_property_readonly("kc", [](const P& p) { return p.w->kc; })
      .def_property_readonly("chunks", [](const P& p) { return p.w->chunks(); })
      .def_property_readonly("nnz", [](const P& p) { return p.w->nnz; })
      .def_property_readonly("bytes", [](const P& p) { return p.w->bytes(); })
      .def_property_readonly("info", [](const P& p) { return info_dict(p.w->info); })
      .def_property_readonly("layout", [](const P& p) { return p.left ? "left" : "right"; });
}

}  // namespace

void register_sparse_testing(py::module_& m) {
  const char* verdict = "The cost model's verdict for `cols` activation columns.";
  auto f32p = py::class_<F32Packed>(m, "SparseF32Weights", "FP32 weights packed for spmm.");
  packed_props(f32p);
  f32p.def_property_readonly("entries", [](const F32Packed& p) { return p.w->entries; })
      .def(
          "is_faster",
          [](const F32Packed& p, int64_t cols) { return sparse_is_faster_f32(*p.w, cols); },
          py::arg("cols"), verdict);
  auto q8p = py::class_<Q8Packed>(m, "SparseQ8Weights", "INT8 weights packed for spmm.");
  packed_props(q8p);
  q8p.def_property_readonly("pairs", [](const Q8Packed& p) { return p.w->pairs; })
      .def_property_readonly("kr", [](const Q8Packed& p) { return p.w->kr; })
      .def(
          "is_faster",
          [](const Q8Packed& p, int64_t cols) { return sparse_is_faster_q8(*p.w, cols); },
          py::arg("cols"), verdict);

  m.def(
      "sparse_analyze",
      [](const py::object& w_obj, const std::string& layout, const py::object& zp) {
        const bool left = parse_left(layout);
        py::array w = require_2d(w_obj, "w");
        if (w.dtype().is(py::dtype::of<float>())) {
          const WView v = view_of(w, left);
          return info_dict(analyze_sparsity_f32(v.out, v.in, static_cast<const float*>(w.data()),
                                                v.s_out, v.s_in));
        }
        const DType t = int8_type(w, "w");
        const WView v = view_of(w, left);
        bool per_channel = false;
        const std::vector<int32_t> zps = zero_points(zp, v.out, &per_channel);
        return info_dict(analyze_sparsity_q8(v.out, v.in, w.data(), t, v.s_out, v.s_in,
                                             zps.data(), per_channel));
      },
      py::arg("w"), py::kw_only(), py::arg("layout") = "left", py::arg("zero_point") = py::none(),
      "Zero structure of a float32, uint8 or int8 weight.");

  m.def("sparse_pack_f32", &pack_f32, py::arg("w"), py::kw_only(), py::arg("layout") = "left",
        py::arg("block_rows") = 0, py::arg("kc") = 0, py::arg("cols") = 0,
        "Packs a float32 weight (layout 'left': [out, in]; 'right': [in, out]).");
  m.def("sparse_pack_q8", &pack_q8, py::arg("w"), py::kw_only(), py::arg("layout") = "left",
        py::arg("zero_point") = py::none(), py::arg("block_rows") = 0, py::arg("kr") = 0,
        py::arg("kc") = 0, py::arg("cols") = 0,
        "Packs a uint8/int8 weight with a per-tensor (scalar) or per-channel zero point.");

  m.def("sparse_f32_spmm", &f32_spmm_call, py::arg("w"), py::arg("x"), py::kw_only(),
        py::arg("bias") = py::none(), py::arg("act") = "none", py::arg("alpha") = 0.f,
        py::arg("beta") = 0.f, py::arg("residual") = py::none(), py::arg("post_act") = "none",
        py::arg("post_alpha") = 0.f, py::arg("post_beta") = 0.f, py::arg("ld_extra") = 0,
        py::arg("num_threads") = 1, py::arg("force_scalar") = false, py::arg("tile") = 0,
        "Y = epilogue(W X) (left) or epilogue(X W) (right). Returns the (rows + 1, cols + "
        "ld_extra) buffer: the extra row and columns are guards that must stay 1234.5.");
  m.def("sparse_q8_spmm", &q8_spmm_call, py::arg("w"), py::arg("x"), py::kw_only(),
        py::arg("x_zero_point") = 0, py::arg("output") = "int32", py::arg("bias") = py::none(),
        py::arg("a_scale") = 1.f, py::arg("b_scale") = py::none(), py::arg("y_scale") = 1.f,
        py::arg("y_zero_point") = 0, py::arg("y_type") = "u8", py::arg("qmin") = py::none(),
        py::arg("qmax") = py::none(), py::arg("rounding") = "onnx_reference",
        py::arg("float_bias") = py::none(), py::arg("ld_extra") = 0, py::arg("num_threads") = 1,
        py::arg("force_scalar") = false, py::arg("tile") = 0,
        "Exact INT8 sparse product (see qgemm.h for the outputs). Returns the (rows + 1, cols + "
        "ld_extra) buffer; guard bytes are 0xA5.");

  m.def(
      "sparse_kernels",
      [] {
        py::list out;
        for (const F32SpmmKernel* k : f32_spmm_kernels())
          out.append(py::dict(py::arg("name") = k->name, py::arg("nt") = k->nt,
                              py::arg("r") = k->r, py::arg("kr") = 1, py::arg("isa") = k->isa));
        for (const Q8SpmmKernel* k : q8_spmm_kernels())
          out.append(py::dict(py::arg("name") = k->name, py::arg("nt") = k->nt,
                              py::arg("r") = k->r, py::arg("kr") = k->kr,
                              py::arg("isa") = k->isa));
        return out;
      },
      "Compiled sparse micro-kernels (f32_spmm.inc then q8_spmm.inc order).");
  m.def("sparse_crossover_density", &sparse_crossover_density, py::arg("int8"),
        py::arg("block_rows"), py::arg("kr"), py::arg("cols"),
        "Measured density at or below which the sparse kernels beat the dense ones.");

  py::class_<F32Problem>(m, "SparseF32Problem", "Fixed FP32 operands for timed runs.")
      .def(py::init<const py::object&, const py::object&, const std::string&, bool, int, int, int,
                    int64_t, bool, int>(),
           py::arg("w"), py::arg("x"), py::kw_only(), py::arg("layout") = "left",
           py::arg("sparse") = true, py::arg("num_threads") = 1, py::arg("block_rows") = 0,
           py::arg("kr") = 0, py::arg("kc") = 0, py::arg("force_scalar") = false,
           py::arg("tile") = 0)
      .def("run", &F32Problem::run, "One product (GIL released).")
      .def("best_seconds", &best_seconds<F32Problem>, py::arg("repeats") = 5,
           py::arg("min_seconds") = 0.05, py::arg("cpu_time") = true,
           "Best seconds per run over `repeats` batches (thread CPU time, or wall time).")
      .def_property_readonly("y", &F32Problem::y)
      .def_property_readonly("dense_macs", &F32Problem::dense_macs)
      .def_property_readonly("packed", &F32Problem::packed);
  py::class_<Q8Problem>(m, "SparseQ8Problem", "Fixed INT8 operands (u8 out) for timed runs.")
      .def(py::init<const py::object&, const py::object&, const std::string&, bool, int, int, int,
                    int64_t, bool, int>(),
           py::arg("w"), py::arg("x"), py::kw_only(), py::arg("layout") = "left",
           py::arg("sparse") = true, py::arg("num_threads") = 1, py::arg("block_rows") = 0,
           py::arg("kr") = 0, py::arg("kc") = 0, py::arg("force_scalar") = false,
           py::arg("tile") = 0)
      .def("run", &Q8Problem::run, "One product (GIL released).")
      .def("best_seconds", &best_seconds<Q8Problem>, py::arg("repeats") = 5,
           py::arg("min_seconds") = 0.05, py::arg("cpu_time") = true,
           "Best seconds per run over `repeats` batches (thread CPU time, or wall time).")
      .def_property_readonly("y", &Q8Problem::y)
      .def_property_readonly("dense_macs", &Q8Problem::dense_macs)
      .def_property_readonly("packed", &Q8Problem::packed);
}

}  // namespace sliver
