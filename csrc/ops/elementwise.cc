// Broadcasting elementwise operators: Add Sub Mul Div Pow Max Min Sum Mean, comparisons, Where.
//
// float32 arithmetic runs on the vector kernels (f32_vbinary) over the contiguous runs that
// broadcast.h finds; integer arithmetic (shape computations), comparisons and Where use typed
// scalar loops over the same runs.
#include <cmath>
#include <limits>
#include <type_traits>

#include "ops/common.h"
#include "sliver/cpu.h"

namespace sliver::ops {
namespace {

// ---- typed scalar loops over broadcast runs ----

// y[i] = f(a[i * sa], b[i * sb]) for every output of the broadcast of a and b.
template <class TA, class TB, class TY, class F>
void broadcast_binary(const Tensor& a, const Tensor& b, Tensor& y, ThreadPool* pool, F f) {
  const BroadcastLoop L = plan_broadcast(y.shape, {a.shape, b.shape});
  const TA* pa = a.ptr<TA>();
  const TB* pb = b.ptr<TB>();
  TY* py = y.ptr<TY>();
  const int64_t sa = L.inner_stride(0), sb = L.inner_stride(1);
  broadcast_for<2>(L, pool, 1.0, [&](int64_t n, int64_t yo, const int64_t* off) {
    const TA* x = pa + off[0];
    const TB* z = pb + off[1];
    TY* out = py + yo;
    for (int64_t i = 0; i < n; ++i) out[i] = f(x[i * sa], z[i * sb]);
  });
}

// ---- arithmetic ----

enum class Arith { add, sub, mul, div, max, min, pow };

VBinary to_vbinary(Arith op) {
  switch (op) {
    case Arith::add: return VBinary::add;
    case Arith::sub: return VBinary::sub;
    case Arith::mul: return VBinary::mul;
    case Arith::div: return VBinary::div;
    case Arith::max: return VBinary::max;
    case Arith::min: return VBinary::min;
    default: break;
  }
  fail("no vector kernel for this op");
}

// Integer arithmetic as ONNX (and numpy) define it: wrap-around add/sub/mul, division truncated
// toward zero; a zero divisor is an error rather than a crash.
template <class T>
struct IntArith {
  using U = std::make_unsigned_t<T>;
  static T apply(Arith op, T x, T z) {
    switch (op) {
      case Arith::add: return static_cast<T>(static_cast<U>(x) + static_cast<U>(z));
      case Arith::sub: return static_cast<T>(static_cast<U>(x) - static_cast<U>(z));
      case Arith::mul: return static_cast<T>(static_cast<U>(x) * static_cast<U>(z));
      case Arith::div:
        if (z == 0) fail("integer division by zero");
        if (z == -1) return static_cast<T>(U{0} - static_cast<U>(x));  // MIN / -1 wraps
        return x / z;
      case Arith::max: return x > z ? x : z;
      case Arith::min: return x < z ? x : z;
      default: fail("unsupported integer op");
    }
  }
};

// Folds the inputs left to right into y (shape = broadcast of all inputs); Mean divides at the
// end. Two inputs is the ONNX binary op; more is Sum/Max/Min/Mean.
class ArithKernel final : public Kernel {
 public:
  ArithKernel(Arith op, DType dtype, bool mean) : op_(op), dtype_(dtype), mean_(mean) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    std::vector<Shape> shapes;
    for (size_t i = 0; i < in.size(); ++i) {
      const Tensor& t = need(in, i);
      if (t.dtype != dtype_) fail("input ", i, " is ", dtype_name(t.dtype), ", expected ", dtype_name(dtype_));
      shapes.push_back(t.shape);
    }
    const Shape shape = broadcast_shapes(shapes);
    // Either operand of full shape can take the result (the fold reads index i before writing it).
    Tensor y = in.size() < 2 ? Tensor::empty(dtype_, shape)
                             : output_reusing(ctx, in, {0, 1}, dtype_, shape);
    if (in.size() == 1) {
      std::memcpy(y.data, in[0]->data, y.nbytes());
    } else {
      fold(*in[0], *in[1], y, ctx.pool);
      for (size_t i = 2; i < in.size(); ++i) fold(y, *in[i], y, ctx.pool);
    }
    if (mean_) {
      const float n = static_cast<float>(in.size());
      binary_f32(VBinary::div, y.ptr<float>(), y.shape, &n, {}, y.ptr<float>(), y.shape, ctx.pool);
    }
    out[0] = std::move(y);
  }

  std::string describe() const override {
    if (dtype_ != DType::f32) return "native_int";
    return std::string("f32_vbinary_") + (isa_usable("avx2") ? "avx2" : "scalar");
  }

 private:
  void fold(const Tensor& a, const Tensor& b, Tensor& y, ThreadPool* pool) {
    switch (dtype_) {
      case DType::f32:
        binary_f32(to_vbinary(op_), a.ptr<float>(), a.shape, b.ptr<float>(), b.shape,
                   y.ptr<float>(), y.shape, pool);
        break;
      case DType::i64: fold_int<int64_t>(a, b, y, pool); break;
      case DType::i32: fold_int<int32_t>(a, b, y, pool); break;
      default: fail("unsupported dtype ", dtype_name(dtype_));
    }
  }
  template <class T>
  void fold_int(const Tensor& a, const Tensor& b, Tensor& y, ThreadPool* pool) {
    const Arith op = op_;
    broadcast_binary<T, T, T>(a, b, y, pool, [op](T x, T z) { return IntArith<T>::apply(op, x, z); });
  }

  Arith op_;
  DType dtype_;
  bool mean_;
};

template <Arith kOp, bool kVariadic = false, bool kMean = false>
std::unique_ptr<Kernel> make_arith(const KernelInit& init) {
  if (init.num_inputs() < 1 || init.num_outputs() != 1) return nullptr;
  if (!kVariadic && init.num_inputs() != 2) return nullptr;
  const DType t = init.input_dtypes[0];
  for (DType d : init.input_dtypes)
    if (d != t) return nullptr;
  const bool ok = t == DType::f32 || ((t == DType::i64 || t == DType::i32) && !kMean);
  if (!ok) return nullptr;
  return std::make_unique<ArithKernel>(kOp, t, kMean);
}

SLIVER_REGISTER_KERNEL("Add", (make_arith<Arith::add>));
SLIVER_REGISTER_KERNEL("Sub", (make_arith<Arith::sub>));
SLIVER_REGISTER_KERNEL("Mul", (make_arith<Arith::mul>));
SLIVER_REGISTER_KERNEL("Div", (make_arith<Arith::div>));
SLIVER_REGISTER_KERNEL("Max", (make_arith<Arith::max, true>));
SLIVER_REGISTER_KERNEL("Min", (make_arith<Arith::min, true>));
SLIVER_REGISTER_KERNEL("Sum", (make_arith<Arith::add, true>));
SLIVER_REGISTER_KERNEL("Mean", (make_arith<Arith::add, true, true>));

// ---- Pow: float base, float or integer exponent ----

class PowKernel final : public Kernel {
 public:
  explicit PowKernel(DType exp_dtype) : exp_dtype_(exp_dtype) {}
  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& a = need(in, 0);
    const Tensor& b = need(in, 1);
    Tensor y = Tensor::empty(DType::f32, broadcast_shapes({a.shape, b.shape}));
    if (b.numel() == 1 && read_scalar(b, "exponent") == 2.0) {
      // x^2 is the correctly rounded x*x, which the vector kernel gives (LayerNorm graphs).
      // b has one element, so y holds a's elements (maybe under more leading 1s).
      binary_f32(VBinary::mul, a.ptr<float>(), a.shape, a.ptr<float>(), a.shape, y.ptr<float>(),
                 a.shape, ctx.pool);
    } else {
      auto f = [](float x, auto e) { return std::pow(x, static_cast<float>(e)); };
      switch (exp_dtype_) {
        case DType::f32: broadcast_binary<float, float, float>(a, b, y, ctx.pool, f); break;
        case DType::f64: broadcast_binary<float, double, float>(a, b, y, ctx.pool, f); break;
        case DType::i64: broadcast_binary<float, int64_t, float>(a, b, y, ctx.pool, f); break;
        case DType::i32: broadcast_binary<float, int32_t, float>(a, b, y, ctx.pool, f); break;
        default: fail("unsupported exponent dtype");
      }
    }
    out[0] = std::move(y);
  }

 private:
  DType exp_dtype_;
};

std::unique_ptr<Kernel> make_pow(const KernelInit& init) {
  if (init.num_inputs() != 2 || init.input_dtypes[0] != DType::f32) return nullptr;
  const DType e = init.input_dtypes[1];
  if (e != DType::f32 && e != DType::f64 && e != DType::i64 && e != DType::i32) return nullptr;
  return std::make_unique<PowKernel>(e);
}
SLIVER_REGISTER_KERNEL("Pow", make_pow);

// ---- comparisons -> bool ----

enum class Cmp { eq, lt, gt, le, ge };

template <class T>
bool compare(Cmp c, T x, T z) {
  switch (c) {
    case Cmp::eq: return x == z;
    case Cmp::lt: return x < z;
    case Cmp::gt: return x > z;
    case Cmp::le: return x <= z;
    case Cmp::ge: return x >= z;
  }
  return false;
}

class CompareKernel final : public Kernel {
 public:
  CompareKernel(Cmp c, DType t) : cmp_(c), dtype_(t) {}
  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& a = need(in, 0);
    const Tensor& b = need(in, 1);
    if (a.dtype != dtype_ || b.dtype != dtype_) fail("operands must both be ", dtype_name(dtype_));
    Tensor y = Tensor::empty(DType::boolean, broadcast_shapes({a.shape, b.shape}));
    const Cmp c = cmp_;
    visit_numeric(dtype_, [&](auto tag) {
      using T = decltype(tag);
      broadcast_binary<T, T, bool>(a, b, y, ctx.pool, [c](T x, T z) { return compare(c, x, z); });
    });
    out[0] = std::move(y);
  }

 private:
  Cmp cmp_;
  DType dtype_;
};

template <Cmp kCmp>
std::unique_ptr<Kernel> make_compare(const KernelInit& init) {
  if (init.num_inputs() != 2) return nullptr;
  const DType t = init.input_dtypes[0];
  if (t != init.input_dtypes[1]) return nullptr;
  if (t != DType::f32 && t != DType::f64 && t != DType::i64 && t != DType::i32 &&
      !(kCmp == Cmp::eq && (t == DType::boolean || t == DType::i8 || t == DType::u8)))
    return nullptr;
  return std::make_unique<CompareKernel>(kCmp, t);
}
SLIVER_REGISTER_KERNEL("Equal", make_compare<Cmp::eq>);
SLIVER_REGISTER_KERNEL("Less", make_compare<Cmp::lt>);
SLIVER_REGISTER_KERNEL("Greater", make_compare<Cmp::gt>);
SLIVER_REGISTER_KERNEL("LessOrEqual", make_compare<Cmp::le>);
SLIVER_REGISTER_KERNEL("GreaterOrEqual", make_compare<Cmp::ge>);

// ---- Where(cond, x, y): any fixed-size element type ----

class WhereKernel final : public Kernel {
 public:
  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& c = need(in, 0);
    const Tensor& x = need(in, 1);
    const Tensor& z = need(in, 2);
    if (c.dtype != DType::boolean) fail("condition must be bool");
    if (x.dtype != z.dtype) fail("X and Y dtypes differ");
    Tensor y = Tensor::empty(x.dtype, broadcast_shapes({c.shape, x.shape, z.shape}));
    const BroadcastLoop L = plan_broadcast(y.shape, {c.shape, x.shape, z.shape});
    const int64_t sc = L.inner_stride(0), sx = L.inner_stride(1), sz = L.inner_stride(2);
    visit_bits(x.dtype, [&](auto tag) {
      using U = decltype(tag);
      const bool* pc = c.ptr<bool>();
      const U* px = x.ptr<U>();
      const U* pz = z.ptr<U>();
      U* py = y.ptr<U>();
      broadcast_for<3>(L, ctx.pool, 1.0, [&](int64_t n, int64_t yo, const int64_t* off) {
        for (int64_t i = 0; i < n; ++i)
          py[yo + i] = pc[off[0] + i * sc] ? px[off[1] + i * sx] : pz[off[2] + i * sz];
      });
    });
    out[0] = std::move(y);
  }
};

std::unique_ptr<Kernel> make_where(const KernelInit& init) {
  if (init.num_inputs() != 3 || init.input_dtypes[0] != DType::boolean) return nullptr;
  if (!movable(init.input_dtypes[1]) || init.input_dtypes[1] != init.input_dtypes[2]) return nullptr;
  return std::make_unique<WhereKernel>();
}
SLIVER_REGISTER_KERNEL("Where", make_where);

}  // namespace
}  // namespace sliver::ops
