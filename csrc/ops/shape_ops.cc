// Ops that only rename memory or make small tensors: Reshape, Flatten, Squeeze, Unsqueeze,
// Identity, Dropout (inference), Shape, Size, Cast, ConstantOfShape, Range.
//
// The view ops return a view of their input (no copy); the executor copies a result only if it
// would hand the caller memory it shares with a feed, a constant or another result.
//
// None of them reads element values, so an input whose type is unknown when the session is built
// (say, the output of a contrib op ONNX shape inference does not know) still gets a kernel; only
// a value that turns out to have no native layout at run time (strings, sequences) is an error.
#include <cmath>
#include <limits>

#include "ops/common.h"

namespace sliver::ops {
namespace {

// A static dtype these kernels accept: one they can carry, or not known yet.
bool layout_ok(DType t) { return t == DType::undefined || movable(t); }
bool index_ok(DType t) { return t == DType::undefined || is_int_index(t); }

// Run-time half of layout_ok: the value must be a numeric tensor.
void need_layout(const Tensor& x, const char* op) {
  if (!movable(x.dtype))
    fail(op, ": the input is not a numeric tensor (", dtype_name(x.dtype),
         "), which the native kernel chosen for an input of unknown type cannot carry");
}

// ---- views ----

enum class View { reshape, flatten, squeeze, unsqueeze, identity };
constexpr const char* kNames[] = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"};

class ViewKernel final : public Kernel {
 public:
  ViewKernel(View op, std::vector<int64_t> axes, bool axes_input, int64_t axis, bool allowzero)
      : op_(op), axes_(std::move(axes)), axes_input_(axes_input), axis_(axis), allowzero_(allowzero) {}

  void run(RunContext&, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    if (op_ == View::identity) {
      out[0] = x;
      if (out.size() > 1) {  // Dropout's mask: everything kept
        need_layout(x, "Dropout");
        out[1] = mask(x.shape);
      }
      return;
    }
    need_layout(x, kNames[static_cast<int>(op_)]);
    out[0] = x.view(shape_of(x, in));
  }

  std::string describe() const override { return "view"; }

 private:
  static Tensor mask(const Shape& s) {
    Tensor m = Tensor::empty(DType::boolean, s);
    std::fill(m.ptr<bool>(), m.ptr<bool>() + m.numel(), true);
    return m;
  }

  Shape shape_of(const Tensor& x, const std::vector<const Tensor*>& in) const {
    const int64_t r = x.rank();
    switch (op_) {
      case View::reshape: return reshape(x.shape, read_ints(need(in, 1), "shape"));
      case View::flatten: {
        const int64_t axis = axis_ < 0 ? axis_ + r : axis_;
        if (axis < 0 || axis > r) fail("axis ", axis_, " out of range for rank ", r);
        int64_t a = 1;
        for (int64_t i = 0; i < axis; ++i) a *= x.shape[i];
        return {a, a ? x.numel() / a : shape_numel(Shape(x.shape.begin() + axis, x.shape.end()))};
      }
      case View::squeeze: {
        std::vector<int64_t> axes = axes_;
        if (axes_input_) axes = opt(in, 1) ? read_ints(*in[1], "axes") : std::vector<int64_t>{};
        std::vector<bool> drop(r, false);
        if (axes.empty()) {
          for (int64_t i = 0; i < r; ++i) drop[i] = x.shape[i] == 1;
        }
        for (int64_t a : axes) {
          const int64_t i = normalize_axis(a, r);
          if (x.shape[i] != 1) fail("cannot squeeze axis ", a, " of size ", x.shape[i]);
          drop[i] = true;
        }
        Shape s;
        for (int64_t i = 0; i < r; ++i)
          if (!drop[i]) s.push_back(x.shape[i]);
        return s;
      }
      case View::unsqueeze: {
        const std::vector<int64_t> axes = axes_input_ ? read_ints(need(in, 1), "axes") : axes_;
        const int64_t nr = r + static_cast<int64_t>(axes.size());
        std::vector<bool> ins(nr, false);
        for (int64_t a : axes) {
          const int64_t i = normalize_axis(a, nr);
          if (ins[i]) fail("axis ", a, " repeated");
          ins[i] = true;
        }
        Shape s;
        for (int64_t i = 0, j = 0; i < nr; ++i) s.push_back(ins[i] ? 1 : x.shape[j++]);
        return s;
      }
      default: return x.shape;
    }
  }

  // ONNX Reshape: 0 copies the input dim (unless allowzero), one -1 is inferred.
  Shape reshape(const Shape& in, const std::vector<int64_t>& want) const {
    Shape s(want.begin(), want.end());
    int64_t infer = -1, known = 1;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == 0 && !allowzero_) {
        if (i >= in.size()) fail("shape ", shape_str(want), ": 0 at axis ", i, " beyond input rank");
        s[i] = in[i];
      }
      if (s[i] == -1) {
        if (infer >= 0) fail("shape ", shape_str(want), " has more than one -1");
        infer = static_cast<int64_t>(i);
      } else if (s[i] < 0) {
        fail("invalid shape ", shape_str(want));
      } else {
        known *= s[i];
      }
    }
    const int64_t n = shape_numel(in);
    if (infer >= 0) {
      if (known == 0 || n % known != 0)
        fail("cannot reshape ", shape_str(in), " to ", shape_str(want));
      s[infer] = n / known;
    }
    if (shape_numel(s) != n) fail("cannot reshape ", shape_str(in), " to ", shape_str(want));
    return s;
  }

  View op_;
  std::vector<int64_t> axes_;
  bool axes_input_;
  int64_t axis_;
  bool allowzero_;
};

std::unique_ptr<Kernel> make_reshape(const KernelInit& init) {
  if (init.num_inputs() != 2 || !index_ok(init.input_dtypes[1])) return nullptr;
  if (!layout_ok(init.input_dtypes[0])) return nullptr;
  return std::make_unique<ViewKernel>(View::reshape, std::vector<int64_t>{}, false, 0,
                                      init.attrs.get_int("allowzero", 0) != 0);
}
std::unique_ptr<Kernel> make_flatten(const KernelInit& init) {
  if (!layout_ok(init.input_dtypes[0])) return nullptr;
  return std::make_unique<ViewKernel>(View::flatten, std::vector<int64_t>{}, false,
                                      init.attrs.get_int("axis", 1), false);
}
template <View kOp>
std::unique_ptr<Kernel> make_squeeze_like(const KernelInit& init) {
  if (!layout_ok(init.input_dtypes[0])) return nullptr;
  const bool axes_input = init.opset >= 13;
  if (axes_input && init.has_input(1) && !is_int_index(init.input_dtypes[1])) return nullptr;
  return std::make_unique<ViewKernel>(kOp, init.attrs.get_ints("axes"), axes_input, 0, false);
}
std::unique_ptr<Kernel> make_identity(const KernelInit& init) {
  if (init.num_inputs() != 1 || init.num_outputs() != 1) return nullptr;
  return std::make_unique<ViewKernel>(View::identity, std::vector<int64_t>{}, false, 0, false);
}
// Inference Dropout is the identity; a training_mode input must be a constant false.
std::unique_ptr<Kernel> make_dropout(const KernelInit& init) {
  if (init.num_inputs() < 1 || !layout_ok(init.input_dtypes[0])) return nullptr;
  if (init.has_input(2)) {
    if (!init.is_const(2) || init.const_inputs[2].numel() != 1 ||
        read_scalar(init.const_inputs[2], "training_mode") != 0)
      return nullptr;
  }
  return std::make_unique<ViewKernel>(View::identity, std::vector<int64_t>{}, false, 0, false);
}
SLIVER_REGISTER_KERNEL("Reshape", make_reshape);
SLIVER_REGISTER_KERNEL("Flatten", make_flatten);
SLIVER_REGISTER_KERNEL("Squeeze", make_squeeze_like<View::squeeze>);
SLIVER_REGISTER_KERNEL("Unsqueeze", make_squeeze_like<View::unsqueeze>);
SLIVER_REGISTER_KERNEL("Identity", make_identity);
SLIVER_REGISTER_KERNEL("Dropout", make_dropout);

// ---- Shape, Size ----

class ShapeKernel final : public Kernel {
 public:
  ShapeKernel(bool size, int64_t start, int64_t end) : size_(size), start_(start), end_(end) {}
  void run(RunContext&, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    need_layout(x, size_ ? "Size" : "Shape");
    if (size_) {
      Tensor t = Tensor::empty(DType::i64, {});
      t.ptr<int64_t>()[0] = x.numel();
      out[0] = std::move(t);
      return;
    }
    const int64_t r = x.rank();
    auto clampi = [r](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r); };
    const int64_t s = clampi(start_), e = std::max(s, clampi(end_));
    Tensor t = Tensor::empty(DType::i64, {e - s});
    std::copy(x.shape.begin() + s, x.shape.begin() + e, t.ptr<int64_t>());
    out[0] = std::move(t);
  }

 private:
  bool size_;
  int64_t start_, end_;
};

std::unique_ptr<Kernel> make_shape(const KernelInit& init) {
  if (!layout_ok(init.input_dtypes[0])) return nullptr;
  return std::make_unique<ShapeKernel>(false, init.attrs.get_int("start", 0),
                                       init.attrs.get_int("end", std::numeric_limits<int64_t>::max()));
}
std::unique_ptr<Kernel> make_size(const KernelInit& init) {
  if (!layout_ok(init.input_dtypes[0])) return nullptr;
  return std::make_unique<ShapeKernel>(true, 0, 0);
}
SLIVER_REGISTER_KERNEL("Shape", make_shape);
SLIVER_REGISTER_KERNEL("Size", make_size);

// ---- Cast between numeric types ----

bool castable(DType t) {
  switch (t) {
    case DType::f32: case DType::f64: case DType::i8: case DType::u8: case DType::i16:
    case DType::u16: case DType::i32: case DType::u32: case DType::i64: case DType::u64:
    case DType::boolean:
      return true;
    default:
      return false;
  }
}

// One element: float -> integer goes through int64 (then wraps) like numpy's C casts on x86;
// anything -> bool is "!= 0".
template <class To, class From>
inline To convert(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    return v != From{0};
  } else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To> &&
                       sizeof(To) < sizeof(int64_t)) {
    return static_cast<To>(static_cast<int64_t>(v));
  } else {
    return static_cast<To>(v);
  }
}

class CastKernel final : public Kernel {
 public:
  explicit CastKernel(DType to) : to_(to) {}
  void run(RunContext& ctx, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    if (x.dtype == to_) {
      out[0] = x;
      return;
    }
    Tensor y = Tensor::empty(to_, x.shape);
    const int64_t n = x.numel();
    visit_numeric(x.dtype, [&](auto from_tag) {
      using From = decltype(from_tag);
      visit_numeric(to_, [&](auto to_tag) {
        using To = decltype(to_tag);
        const From* src = x.ptr<From>();
        To* dst = y.ptr<To>();
        parallel_for(ctx.pool, n, 1.0, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) dst[i] = convert<To>(src[i]);
        });
      });
    });
    out[0] = std::move(y);
  }

 private:
  DType to_;
};

std::unique_ptr<Kernel> make_cast(const KernelInit& init) {
  const DType to = static_cast<DType>(init.attrs.get_int("to", 0));
  if (!castable(init.input_dtypes[0]) || !castable(to)) return nullptr;
  return std::make_unique<CastKernel>(to);
}
SLIVER_REGISTER_KERNEL("Cast", make_cast);

// ---- ConstantOfShape ----

class ConstantOfShapeKernel final : public Kernel {
 public:
  explicit ConstantOfShapeKernel(Tensor value) : value_(std::move(value)) {}
  void run(RunContext&, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Shape s = read_ints(need(in, 0), "shape");
    Tensor y = Tensor::empty(value_.dtype, s);
    visit_bits(value_.dtype, [&](auto tag) {
      using U = decltype(tag);
      std::fill(y.ptr<U>(), y.ptr<U>() + y.numel(), value_.ptr<U>()[0]);
    });
    out[0] = std::move(y);
  }

 private:
  Tensor value_;
};

std::unique_ptr<Kernel> make_constant_of_shape(const KernelInit& init) {
  if (init.num_inputs() != 1 || !is_int_index(init.input_dtypes[0])) return nullptr;
  Tensor v;
  if (const Tensor* t = init.attrs.get_tensor("value")) {
    if (t->numel() != 1 || !movable(t->dtype) || t->dtype == DType::opaque) return nullptr;
    v = t->clone();
  } else {
    v = Tensor::zeros(DType::f32, {1});
  }
  return std::make_unique<ConstantOfShapeKernel>(std::move(v));
}
SLIVER_REGISTER_KERNEL("ConstantOfShape", make_constant_of_shape);

// ---- Range ----

class RangeKernel final : public Kernel {
 public:
  explicit RangeKernel(DType t) : dtype_(t) {}
  void run(RunContext&, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    visit_numeric(dtype_, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (!std::is_same_v<T, bool>) {
        const T start = need(in, 0).ptr<T>()[0], limit = need(in, 1).ptr<T>()[0];
        const T delta = need(in, 2).ptr<T>()[0];
        if (delta == T{0}) fail("Range delta is 0");
        const double count = std::ceil((static_cast<double>(limit) - static_cast<double>(start)) /
                                       static_cast<double>(delta));
        const int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
        Tensor y = Tensor::empty(dtype_, {n});
        for (int64_t i = 0; i < n; ++i) y.ptr<T>()[i] = static_cast<T>(start + static_cast<T>(i) * delta);
        out[0] = std::move(y);
      }
    });
  }

 private:
  DType dtype_;
};

std::unique_ptr<Kernel> make_range(const KernelInit& init) {
  if (init.num_inputs() != 3) return nullptr;
  const DType t = init.input_dtypes[0];
  if (t != DType::f32 && t != DType::f64 && t != DType::i16 && t != DType::i32 && t != DType::i64)
    return nullptr;
  if (init.input_dtypes[1] != t || init.input_dtypes[2] != t) return nullptr;
  return std::make_unique<RangeKernel>(t);
}
SLIVER_REGISTER_KERNEL("Range", make_range);

}  // namespace
}  // namespace sliver::ops
