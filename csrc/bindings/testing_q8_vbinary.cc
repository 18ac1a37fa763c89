// Test hooks for the 8-bit binary elementwise kernels of ukernels/q8_vbinary (q8_vaddmul:
// QLinearAdd/QLinearMul, q8_vbinary: the QDQ float path, q8_vlut: code-table gathers),
// registered into the `testing` submodule. Bindings only: argument conversion, fenced copies of
// the inputs (an over-read faults) and guard bytes around the output.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "sliver/cpu.h"
#include "ukernels/q8_vbinary/q8_vaddmul.h"
#include "ukernels/q8_vbinary/q8_vbinary.h"
#include "ukernels/q8_vbinary/q8_vlut.h"

namespace py = pybind11;

namespace sliver {
namespace {

// `bytes` bytes copied to end exactly at a PROT_NONE page.
class FencedBytes {
 public:
  FencedBytes(const void* src, size_t bytes) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    body_ = (bytes + page - 1) / page * page;
    void* p = mmap(nullptr, body_ + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    base_ = static_cast<uint8_t*>(p);
    mprotect(base_ + body_, page, PROT_NONE);
    if (bytes) std::memcpy(base_ + body_ - bytes, src, bytes);
    data_ = base_ + body_ - bytes;
  }
  ~FencedBytes() { munmap(base_, body_ + static_cast<size_t>(sysconf(_SC_PAGESIZE))); }
  FencedBytes(const FencedBytes&) = delete;
  FencedBytes& operator=(const FencedBytes&) = delete;
  const uint8_t* data() const { return data_; }

 private:
  uint8_t* base_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t body_ = 0;
};

const uint8_t* bytes_of(const py::array& x, int64_t need, const char* what) {
  if (x.itemsize() != 1 || !(x.flags() & py::array::c_style))
    throw std::invalid_argument(std::string(what) + " must be a contiguous uint8/int8 array");
  if (x.size() < need)
    throw std::invalid_argument(std::string(what) + " has too few codes for n and its stride");
  return static_cast<const uint8_t*>(x.data());
}

void check_run(int64_t n, int64_t a_stride, int64_t b_stride, int64_t guard) {
  if (n < 1 || guard < 0 || (a_stride != 0 && a_stride != 1) || (b_stride != 0 && b_stride != 1))
    throw std::invalid_argument("need n >= 1, guard >= 0 and strides of 0 or 1");
}

// Output buffer: guard + n + guard bytes, the guards preset 0xA5.
py::array_t<uint8_t> guarded(int64_t n, int64_t guard) {
  py::array_t<uint8_t> y(n + 2 * guard);
  std::memset(y.mutable_data(), 0xA5, static_cast<size_t>(n + 2 * guard));
  return y;
}

py::array_t<uint8_t> run_qlinear(const std::string& name, const py::array& a, int64_t a_stride,
                                 const py::array& b, int64_t b_stride, int64_t n, float sa,
                                 int32_t za, float sb, int32_t zb, float sc, int32_t zc,
                                 int64_t guard) {
  const Q8QLinearKernel* k = find_q8_qlinear_kernel(name);
  if (!k) throw std::invalid_argument("no compiled q8 add/mul kernel named " + name);
  if (!isa_usable(k->isa)) throw std::invalid_argument(name + " needs an ISA this CPU lacks");
  check_run(n, a_stride, b_stride, guard);
  const int64_t na = a_stride ? n : 1, nb = b_stride ? n : 1;
  FencedBytes fa(bytes_of(a, na, "a"), static_cast<size_t>(na));
  FencedBytes fb(bytes_of(b, nb, "b"), static_cast<size_t>(nb));
  const Q8QLinearParams p = q8_qlinear_params(k->op, sa, za, sb, zb, sc, zc);
  py::array_t<uint8_t> y = guarded(n, guard);
  k->fn(p, n, fa.data(), a_stride, fb.data(), b_stride, y.mutable_data() + guard);
  return y;
}

py::array_t<uint8_t> run_vbinary(const std::string& name, const std::string& op,
                                 const py::array& a, int64_t a_stride, const py::array& b,
                                 int64_t b_stride, int64_t n, float a_scale, int32_t a_zp,
                                 bool a_signed, float b_scale, int32_t b_zp, bool b_signed,
                                 float y_scale, int32_t y_zp, bool y_signed, int32_t lo,
                                 int32_t hi, int64_t guard) {
  const Q8VBinaryKernel* k = find_q8_vbinary_kernel(name);
  if (!k) throw std::invalid_argument("no compiled q8 binary kernel named " + name);
  if (!isa_usable(k->isa)) throw std::invalid_argument(name + " needs an ISA this CPU lacks");
  check_run(n, a_stride, b_stride, guard);
  const char* ops[] = {"Add", "Sub", "Mul", "Div", "Max", "Min"};
  int o = 0;
  while (o < 6 && op != ops[o]) ++o;
  if (o == 6) throw std::invalid_argument("unknown op " + op);
  Q8BinaryParams p;
  p.op = static_cast<Q8BinaryOp>(o);
  p.a_signed = a_signed;
  p.b_signed = b_signed;
  p.y_signed = y_signed;
  p.a_scale = a_scale;
  p.b_scale = b_scale;
  p.y_scale = y_scale;
  p.a_zero_point = a_zp;
  p.b_zero_point = b_zp;
  p.y_zero_point = y_zp;
  p.lo = lo;
  p.hi = hi;
  const int64_t na = a_stride ? n : 1, nb = b_stride ? n : 1;
  FencedBytes fa(bytes_of(a, na, "a"), static_cast<size_t>(na));
  FencedBytes fb(bytes_of(b, nb, "b"), static_cast<size_t>(nb));
  py::array_t<uint8_t> y = guarded(n, guard);
  k->fn(p, n, fa.data(), a_stride, fb.data(), b_stride, y.mutable_data() + guard);
  return y;
}

const Q8VLutKernels& vlut_kernels(const std::string& isa) {
  const Q8VLutKernels* k = find_q8_vlut_kernels(isa);
  if (!k) throw std::invalid_argument("no compiled table-gather kernels for " + isa);
  if (!isa_usable(k->isa)) throw std::invalid_argument(isa + ": this CPU lacks it");
  return *k;
}

py::array_t<uint8_t> run_vlut1(const std::string& isa, const py::array& table,
                               const py::array& x, int64_t n, int64_t guard) {
  const Q8VLutKernels& k = vlut_kernels(isa);
  check_run(n, 1, 1, guard);
  if (table.size() != 256) throw std::invalid_argument("table must have 256 codes");
  FencedBytes ft(bytes_of(table, 256, "table"), 256);
  FencedBytes fx(bytes_of(x, n, "x"), static_cast<size_t>(n));
  py::array_t<uint8_t> y = guarded(n, guard);
  k.lut1(ft.data(), n, fx.data(), y.mutable_data() + guard);
  return y;
}

py::array_t<uint8_t> run_vlut2(const std::string& isa, const py::array& table,
                               const py::array& a, int64_t a_stride, const py::array& b,
                               int64_t b_stride, int64_t n, int64_t guard) {
  const Q8VLutKernels& k = vlut_kernels(isa);
  check_run(n, a_stride, b_stride, guard);
  if (table.size() != 65536) throw std::invalid_argument("table must have 65536 codes");
  // The table with exactly its allowed padding before the fence.
  std::string padded(static_cast<const char*>(table.data()), 65536);
  padded.resize(65536 + kQ8VLut2TablePad, '\0');
  FencedBytes ft(padded.data(), padded.size());
  const int64_t na = a_stride ? n : 1, nb = b_stride ? n : 1;
  FencedBytes fa(bytes_of(a, na, "a"), static_cast<size_t>(na));
  FencedBytes fb(bytes_of(b, nb, "b"), static_cast<size_t>(nb));
  py::array_t<uint8_t> y = guarded(n, guard);
  k.lut2(ft.data(), n, fa.data(), a_stride, fb.data(), b_stride, y.mutable_data() + guard);
  return y;
}

py::list list_kernels() {
  py::list out;
  int count = 0;
  const Q8QLinearKernel* ks = q8_qlinear_kernels(&count);
  for (int i = 0; i < count; ++i) {
    py::dict d;
    d["name"] = ks[i].name;
    d["op"] = ks[i].op == Q8QLinearOp::add ? "add" : "mul";
    d["signed"] = ks[i].is_signed;
    d["isa"] = ks[i].isa;
    d["usable"] = isa_usable(ks[i].isa);
    out.append(d);
  }
  return out;
}

}  // namespace

void register_q8_vbinary_testing(py::module_& m) {
  m.def("q8_qlinear_kernels", &list_kernels,
        "The compiled QLinearAdd/QLinearMul kernels: name, op, signed, isa, usable.");
  m.def("q8_qlinear", &run_qlinear, py::arg("kernel"), py::arg("a"), py::arg("a_stride"),
        py::arg("b"), py::arg("b_stride"), py::arg("n"), py::arg("a_scale"),
        py::arg("a_zero_point"), py::arg("b_scale"), py::arg("b_zero_point"),
        py::arg("c_scale"), py::arg("c_zero_point"), py::arg("guard") = 16,
        "Runs one QLinearAdd/QLinearMul kernel on n outputs (stride 0: the operand repeats its "
        "first code), inputs fenced; returns guard + n + guard bytes, the guards preset 0xA5.");
  m.def("q8_vbinary", &run_vbinary, py::arg("kernel"), py::arg("op"), py::arg("a"),
        py::arg("a_stride"), py::arg("b"), py::arg("b_stride"), py::arg("n"),
        py::arg("a_scale"), py::arg("a_zero_point"), py::arg("a_signed"), py::arg("b_scale"),
        py::arg("b_zero_point"), py::arg("b_signed"), py::arg("y_scale"),
        py::arg("y_zero_point"), py::arg("y_signed"), py::arg("lo"), py::arg("hi"),
        py::arg("guard") = 16,
        "Runs a q8_vbinary kernel (sliver:QLinearBinary's float path) like q8_qlinear.");
  m.def("q8_vlut1", &run_vlut1, py::arg("isa"), py::arg("table"), py::arg("x"), py::arg("n"),
        py::arg("guard") = 16, "Runs q8_vlut1_<isa> (256-entry table) like q8_qlinear.");
  m.def("q8_vlut2", &run_vlut2, py::arg("isa"), py::arg("table"), py::arg("a"),
        py::arg("a_stride"), py::arg("b"), py::arg("b_stride"), py::arg("n"),
        py::arg("guard") = 16,
        "Runs q8_vlut2_<isa> (pair table) like q8_qlinear; the table is fenced after its "
        "allowed padding.");
  m.def("q8_vbinary_kernels", [] {
    py::list out;
#define SLIVER_Q8_VBINARY_KERNEL(name, isa) \
  out.append(py::make_tuple(#name, #isa, isa_usable(#isa)));
#include "ukernels/q8_vbinary/q8_vbinary.inc"
#undef SLIVER_Q8_VBINARY_KERNEL
#define SLIVER_Q8_VLUT_ISA(isa) \
  out.append(py::make_tuple("q8_vlut_" #isa, #isa, isa_usable(#isa)));
#include "ukernels/q8_vbinary/q8_vlut.inc"
#undef SLIVER_Q8_VLUT_ISA
    return out;
  }, "(name, isa, usable) of the compiled q8_vbinary kernels and q8_vlut ISAs.");
}

}  // namespace sliver
