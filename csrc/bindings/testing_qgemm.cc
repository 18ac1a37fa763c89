// Test and benchmark hooks for the 8-bit GEMM, registered into the `testing` submodule.
// Bindings only: argument conversion, fenced copies (so tests catch over-reads), kernel forcing.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "sliver/cpu.h"
#include "sliver/qgemm.h"
#include "sliver/thread_pool.h"

namespace py = pybind11;

namespace sliver {
namespace {

// A copy of `bytes` bytes that ends exactly at a PROT_NONE page: reading one byte past the end
// faults, so a test crashes instead of silently passing on an over-read.
class Fenced {
 public:
  Fenced(const void* src, size_t bytes) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    body_ = (bytes + page - 1) / page * page;
    len_ = body_ + page;
    void* p = mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    base_ = static_cast<uint8_t*>(p);
    mprotect(base_ + body_, page, PROT_NONE);
    data_ = base_ + body_ - bytes;
    if (bytes) std::memcpy(data_, src, bytes);
  }
  ~Fenced() { munmap(base_, len_); }
  Fenced(const Fenced&) = delete;
  Fenced& operator=(const Fenced&) = delete;
  uint8_t* data() const { return data_; }

 private:
  uint8_t* base_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t body_ = 0, len_ = 0;
};

ThreadPool* pool_for(int n) {
  if (n <= 1) return nullptr;
  static std::mutex mu;
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  std::lock_guard<std::mutex> lock(mu);
  auto& p = pools[n];
  if (!p) p = std::make_unique<ThreadPool>(n);
  return p.get();
}

DType dtype_of(const py::array& a) {
  const py::dtype d = a.dtype();
  if (d.is(py::dtype::of<uint8_t>())) return DType::u8;
  if (d.is(py::dtype::of<int8_t>())) return DType::i8;
  if (d.is(py::dtype::of<int32_t>())) return DType::i32;
  if (d.is(py::dtype::of<float>())) return DType::f32;
  throw std::invalid_argument("unsupported dtype " + std::string(py::str(d)));
}

// Row stride in elements of a 2-D array whose rows are contiguous (views with gaps are fine).
int64_t row_stride(const py::array& a) {
  if (a.ndim() != 2) throw std::invalid_argument("expected a 2-D array");
  const int64_t item = a.itemsize();
  if (a.shape(0) == 0 || a.shape(1) == 0) return a.shape(1);  // nothing is read or written
  if (a.shape(1) > 1 && a.strides(1) != item)
    throw std::invalid_argument("rows must be contiguous");
  if (a.strides(0) % item) throw std::invalid_argument("row stride not a multiple of item size");
  return a.shape(0) > 1 ? a.strides(0) / item : a.shape(1);
}

// Bytes spanned by an M x K view with row stride ld (elements of `item` bytes).
size_t span_bytes(int64_t rows, int64_t cols, int64_t ld, int64_t item) {
  return rows == 0 || cols == 0 ? 0 : static_cast<size_t>(((rows - 1) * ld + cols) * item);
}

QGemmPath parse_path(const std::string& s) {
  if (s == "auto" || s == "automatic") return QGemmPath::automatic;
  if (s == "exact") return QGemmPath::exact;
  if (s == "fast") return QGemmPath::fast;
  throw std::invalid_argument("path must be auto, exact or fast: " + s);
}

std::shared_ptr<PackedQ8B> pack_b(const py::array& b, const py::array_t<int32_t>& zero_point,
                                  bool trans_b, bool fenced, bool drop_fixes) {
  const DType t = dtype_of(b);
  const int64_t ld = row_stride(b);
  const int64_t rows = b.shape(0), cols = b.shape(1);
  const int64_t K = trans_b ? cols : rows, N = trans_b ? rows : cols;
  const int64_t nz = zero_point.size();
  if (nz != 1 && nz != N) throw std::invalid_argument("zero_point must have 1 or N values");
  std::vector<int32_t> zp(zero_point.data(), zero_point.data() + nz);
  std::unique_ptr<Fenced> copy;
  const void* src = b.data();
  if (fenced) {
    copy = std::make_unique<Fenced>(src, span_bytes(rows, cols, ld, 1));
    src = copy->data();
  }
  py::gil_scoped_release nogil;
  auto packed = pack_q8_b(K, N, src, t, ld, trans_b, zp.data(), nz == N && N > 1);
  if (drop_fixes) q8_drop_pair_fixes(*packed);
  return packed;
}

// Runs qgemm into `out` (a 2-D view: int32 -> int32 output, u8/i8 -> quantized, f32 -> float).
void run_qgemm(const py::array& a, const PackedQ8B& packed, int32_t a_zero_point, py::array out,
               std::optional<py::array_t<int32_t>> bias, float a_scale,
               std::optional<py::array_t<float>> b_scale, float y_scale, int32_t y_zero_point,
               std::optional<int32_t> qmin, std::optional<int32_t> qmax,
               const std::string& rounding, std::optional<py::array_t<float>> float_bias,
               const std::string& path, const std::string& isa, int threads, bool fenced) {
  QGemmArgs args;
  args.M = a.shape(0);
  if (a.ndim() != 2 || a.shape(1) != packed.K) throw std::invalid_argument("A must be M x K");
  if (out.ndim() != 2 || out.shape(0) != args.M || out.shape(1) != packed.N)
    throw std::invalid_argument("out must be M x N");
  if (!out.writeable()) throw std::invalid_argument("out is read-only");
  args.a_type = dtype_of(a);
  args.lda = row_stride(a);
  args.a_zero_point = a_zero_point;
  args.ldc = row_stride(out);
  args.c = out.mutable_data();
  const DType ot = dtype_of(out);
  args.output = ot == DType::i32   ? QGemmOutput::int32
                : ot == DType::f32 ? QGemmOutput::float32
                                   : QGemmOutput::quantized;
  if (args.output == QGemmOutput::quantized) args.y_type = ot;
  args.a_scale = a_scale;
  args.y_scale = y_scale;
  args.y_zero_point = y_zero_point;
  const bool u8 = args.y_type == DType::u8;
  args.qmin = qmin.value_or(u8 ? 0 : -128);
  args.qmax = qmax.value_or(u8 ? 255 : 127);
  if (rounding == "onnx_reference")
    args.rounding = RequantRounding::onnx_reference;
  else if (rounding == "onnxruntime")
    args.rounding = RequantRounding::onnxruntime;
  else
    throw std::invalid_argument("rounding must be onnx_reference or onnxruntime");

  // Inputs the kernels read are copied behind a fence when asked (A, bias, scales).
  std::vector<std::unique_ptr<Fenced>> keep;
  auto place = [&](const void* p, size_t bytes) -> const void* {
    if (!fenced) return p;
    keep.push_back(std::make_unique<Fenced>(p, bytes));
    return keep.back()->data();
  };
  args.a = place(a.data(), span_bytes(args.M, packed.K, args.lda, 1));
  auto vec_arg = [&](const auto& arr, int64_t n, const char* what) {
    if (arr->ndim() != 1 || arr->shape(0) != n)
      throw std::invalid_argument(std::string(what) + " has the wrong length");
    return place(arr->data(), static_cast<size_t>(n) * arr->itemsize());
  };
  if (bias) args.bias = static_cast<const int32_t*>(vec_arg(bias, packed.N, "bias"));
  if (float_bias)
    args.float_bias = static_cast<const float*>(vec_arg(float_bias, packed.N, "float_bias"));
  if (b_scale) {
    args.b_scale_per_column = b_scale->size() == packed.N && packed.N > 1;
    args.b_scale = static_cast<const float*>(
        vec_arg(b_scale, args.b_scale_per_column ? packed.N : 1, "b_scale"));
  }
  QGemmOptions opt;
  opt.path = parse_path(path);
  if (isa == "scalar") opt.isa = QGemmIsa::scalar;
  else if (isa == "avx2") opt.isa = QGemmIsa::avx2;
  else if (isa != "native") throw std::invalid_argument("isa must be native, avx2 or scalar");
  py::gil_scoped_release nogil;
  qgemm(args, packed, pool_for(threads), opt);
}

py::tuple pack_a(const py::array& a, bool scalar) {
  const int64_t M = a.shape(0), K = a.shape(1), lda = row_stride(a), kp = (K + 3) / 4 * 4;
  const int64_t rows_p = (M + 3) / 4 * 4;
  py::array_t<uint8_t> u8({rows_p * kp}), sm({rows_p * kp * 2});
  py::array_t<int32_t> rowsum({M}), negsum({M});
  Fenced copy(a.data(), span_bytes(M, K, lda, 1));
  const Q8PackAFn fn =
#if defined(__x86_64__) || defined(_M_X64)
      (!scalar && isa_usable("avx2")) ? q8_pack_a_avx2 :
#endif
                                      q8_pack_a_scalar;
  fn(M, K, kp, copy.data(), dtype_of(a), lda, u8.mutable_data(), sm.mutable_data(),
     rowsum.mutable_data(), negsum.mutable_data());
  return py::make_tuple(u8, sm, rowsum, negsum);
}

// The standalone epilogue on an int32 tile (mr x nc), into `out` (dtype picks the output).
void run_epilogue(const py::array_t<int32_t>& acc, py::array out, int64_t n0,
                  const py::array_t<int32_t>& col_term, const py::array_t<int32_t>& row_term,
                  const py::array_t<float>& col_scale, std::optional<py::array_t<float>> float_bias,
                  int32_t y_zero_point, const std::string& rounding, bool scalar) {
  const int64_t mr = acc.shape(0), nc = acc.shape(1);
  if (out.ndim() != 2 || out.shape(0) != mr || out.shape(1) != nc)
    throw std::invalid_argument("out must be mr x nc");
  if (col_term.size() < n0 + (nc + 7) / 8 * 8 || col_scale.size() < n0 + (nc + 7) / 8 * 8)
    throw std::invalid_argument("column arrays must cover n0 + nc rounded up to 8");
  Q8EpilogueParams p;
  const DType ot = dtype_of(out);
  p.output = ot == DType::i32   ? QGemmOutput::int32
             : ot == DType::f32 ? QGemmOutput::float32
                                : QGemmOutput::quantized;
  if (p.output == QGemmOutput::quantized) p.y_type = ot;
  p.col_term = col_term.data();
  p.col_scale = col_scale.data();
  std::vector<double> f64(col_scale.data(), col_scale.data() + col_scale.size());
  p.col_scale_f64 = f64.data();
  std::unique_ptr<Fenced> fb;
  if (float_bias) {
    fb = std::make_unique<Fenced>(float_bias->data(), float_bias->size() * sizeof(float));
    p.float_bias = reinterpret_cast<const float*>(fb->data()) - n0;
  }
  p.y_zero_point = y_zero_point;
  p.qmin = ot == DType::i8 ? -128 : 0;
  p.qmax = ot == DType::i8 ? 127 : 255;
  p.rounding =
      rounding == "onnxruntime" ? RequantRounding::onnxruntime : RequantRounding::onnx_reference;
  const Q8EpilogueFn fn =
#if defined(__x86_64__) || defined(_M_X64)
      (!scalar && isa_usable("avx2")) ? q8_epilogue_avx2_for(p) :
#endif
                                      q8_epilogue_scalar_for(p);
  fn(p, acc.data(), row_stride(acc), mr, nc, n0, row_term.data(), row_term.data(),
     out.mutable_data(), row_stride(out));
}

}  // namespace

void register_qgemm_testing(py::module_& m) {
  py::class_<PackedQ8B, std::shared_ptr<PackedQ8B>>(m, "PackedQ8B")
      .def_readonly("K", &PackedQ8B::K)
      .def_readonly("N", &PackedQ8B::N)
      .def_readonly("kp", &PackedQ8B::kp)
      .def_readonly("nr", &PackedQ8B::nr)
      .def_readonly("kr", &PackedQ8B::kr)
      .def_readonly("fast_panels", &PackedQ8B::fast_panels)
      .def_property_readonly("panels", &PackedQ8B::panels)
      .def_readonly("panel_fast_safe", &PackedQ8B::panel_fast_safe)
      .def_property_readonly("panel_fix_counts",
                             [](const PackedQ8B& p) {
                               std::vector<int64_t> v(p.panels());
                               for (int64_t i = 0; i < p.panels(); ++i) v[i] = p.panel_fix_count(i);
                               return v;
                             })
      .def_readonly("colsum", &PackedQ8B::colsum);

  m.def("q8_pack_b", &pack_b, py::arg("b"), py::arg("zero_point"), py::arg("trans_b") = false,
        py::arg("fenced") = false, py::arg("drop_fixes") = false,
        "Packs weights (K x N, or N x K with trans_b; u8 or i8) with 1 or N zero points; "
        "drop_fixes: then q8_drop_pair_fixes.");
  m.def("q8_gemm", &run_qgemm, py::arg("a"), py::arg("packed"), py::arg("a_zero_point"),
        py::arg("out"), py::arg("bias") = py::none(), py::arg("a_scale") = 1.f,
        py::arg("b_scale") = py::none(), py::arg("y_scale") = 1.f, py::arg("y_zero_point") = 0,
        py::arg("qmin") = py::none(), py::arg("qmax") = py::none(),
        py::arg("rounding") = "onnx_reference", py::arg("float_bias") = py::none(),
        py::arg("path") = "auto", py::arg("isa") = "native", py::arg("threads") = 1,
        py::arg("fenced") = false,
        "Runs the 8-bit GEMM into `out`, a 2-D view whose dtype picks the output: int32 sums, "
        "u8/i8 requantized, float32 dequantized. "
        "path: auto | exact | fast (fast is not exact on unsafe panels); isa: native | avx2 | "
        "scalar caps the kernels' instruction set; fenced copies A/bias/scales to end at a guard page.");
  m.def("q8_pack_a", &pack_a, py::arg("a"), py::arg("scalar") = false,
        "Packs A for the 4x16c4 kernels: (offset_u8 panels, sign_mag panels, rowsum, negsum).");
  m.def("q8_epilogue", &run_epilogue, py::arg("acc"), py::arg("out"), py::arg("n0"),
        py::arg("col_term"), py::arg("row_term"), py::arg("col_scale"),
        py::arg("float_bias") = py::none(), py::arg("y_zero_point") = 0,
        py::arg("rounding") = "onnx_reference", py::arg("scalar") = false,
        "The standalone tile epilogue (any mr x nc int32 tile) into `out`; float_bias holds the "
        "tile's nc columns (fenced).");
  m.def("q8_gemm_kernels", []() {
    py::list out;
    for (const Q8GemmKernel* k : q8_gemm_kernels()) {
      py::dict d;
      d["name"] = k->name;
      d["mr"] = k->mr;
      d["nr"] = k->nr;
      d["kr"] = k->kr;
      d["isa"] = k->isa;
      d["a_format"] = k->a_format == QAFormat::offset_u8 ? "offset_u8" : "sign_mag";
      d["exact"] = k->exact;
      d["usable"] = isa_usable(k->isa);
      out.append(d);
    }
    return out;
  });
}

}  // namespace sliver
