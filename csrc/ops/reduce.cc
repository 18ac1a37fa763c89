// ReduceSum / ReduceMean / ReduceMax / ReduceMin / ReduceProd / ReduceSumSquare / ReduceL1 /
// ReduceL2.
//
// After dropping size-1 dims and merging neighbours with the same role, a reduction is a sequence
// of kept (K) and reduced (R) groups. One pass reduces a single R group of a [K, R, K] view:
// for each outer index, accumulate `r` rows of `inner` values into one row (contiguous, so it
// vectorises). Several R groups take several passes, innermost first, through a temporary.
// Float sums accumulate in double; the first pass maps (|x|, x^2) and the last finalises
// (mean, sqrt).
#include <cmath>
#include <limits>

#include "ops/common.h"

namespace sliver::ops {
namespace {

enum class Red { sum, mean, max, min, prod, sum_square, l1, l2 };

template <class T>
struct Acc {  // accumulator type: double for float sums, T otherwise
  using type = std::conditional_t<std::is_floating_point_v<T>, double, T>;
};

template <class T, class A>
A init_value(Red op) {
  switch (op) {
    case Red::max:
      return std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity()
                                                   : std::numeric_limits<T>::lowest();
    case Red::min:
      return std::numeric_limits<T>::has_infinity ? std::numeric_limits<T>::infinity()
                                                   : std::numeric_limits<T>::max();
    case Red::prod: return A{1};
    default: return A{0};
  }
}

template <class A>
inline A combine(Red op, A acc, A v) {
  switch (op) {
    case Red::max: return v > acc || v != v ? v : acc;
    case Red::min: return v < acc || v != v ? v : acc;
    case Red::prod: return acc * v;
    default: return acc + v;
  }
}

template <class A>
inline A first_map(Red op, A v) {
  switch (op) {
    case Red::sum_square:
    case Red::l2: return v * v;
    case Red::l1: return v < A{0} ? A{0} - v : v;
    default: return v;
  }
}

// A contiguous row x[0, r) reduced with kAcc independent accumulators, so the loop is not one
// long chain of dependent adds (and vectorises); the accumulators are combined at the end.
template <class T, class A, Red kComb, Red kMap>
A reduce_row(const T* x, int64_t r, Red op) {
  constexpr int kAcc = 8;
  A acc[kAcc];
  for (A& a : acc) a = init_value<T, A>(op);
  int64_t j = 0;
  for (; j + kAcc <= r; j += kAcc)
    for (int k = 0; k < kAcc; ++k)
      acc[k] = combine(kComb, acc[k], first_map(kMap, static_cast<A>(x[j + k])));
  for (; j < r; ++j) acc[0] = combine(kComb, acc[0], first_map(kMap, static_cast<A>(x[j])));
  for (int k = 1; k < kAcc; ++k) acc[0] = combine(kComb, acc[0], acc[k]);
  return acc[0];
}

template <class T, class A, Red kComb, Red kMap>
void reduce_rows(const T* x, A* y, int64_t outer, int64_t r, Red op, ThreadPool* pool) {
  parallel_for(pool, outer, static_cast<double>(r), [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) y[o] = reduce_row<T, A, kComb, kMap>(x + o * r, r, op);
  });
}

// One pass: y[o][i] = reduce_j x[o][j][i] (accumulating in A), for a [outer, r, inner] view.
template <class T, class A>
void reduce_pass(Red op, bool first, const T* x, A* y, int64_t outer, int64_t r, int64_t inner,
                 ThreadPool* pool) {
  const Red comb = (op == Red::sum_square || op == Red::l2 || op == Red::l1 || op == Red::mean) ? Red::sum : op;
  if (inner == 1) {  // rows (a last-axis reduction): the accumulator pattern above
    const Red map = first ? op : Red::sum;
    switch (comb) {
      case Red::max: return reduce_rows<T, A, Red::max, Red::sum>(x, y, outer, r, op, pool);
      case Red::min: return reduce_rows<T, A, Red::min, Red::sum>(x, y, outer, r, op, pool);
      case Red::prod: return reduce_rows<T, A, Red::prod, Red::sum>(x, y, outer, r, op, pool);
      default:
        if (map == Red::sum_square || map == Red::l2)
          return reduce_rows<T, A, Red::sum, Red::sum_square>(x, y, outer, r, op, pool);
        if (map == Red::l1) return reduce_rows<T, A, Red::sum, Red::l1>(x, y, outer, r, op, pool);
        return reduce_rows<T, A, Red::sum, Red::sum>(x, y, outer, r, op, pool);
    }
  }
  parallel_for(pool, outer, static_cast<double>(r * inner), [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      A* yo = y + o * inner;
      for (int64_t i = 0; i < inner; ++i) yo[i] = init_value<T, A>(op);
      const T* xo = x + o * r * inner;
      for (int64_t j = 0; j < r; ++j) {
        const T* xr = xo + j * inner;
        if (first) {
          for (int64_t i = 0; i < inner; ++i) yo[i] = combine(comb, yo[i], first_map(op, static_cast<A>(xr[i])));
        } else {
          for (int64_t i = 0; i < inner; ++i) yo[i] = combine(comb, yo[i], static_cast<A>(xr[i]));
        }
      }
    }
  });
}

class ReduceKernel final : public Kernel {
 public:
  ReduceKernel(Red op, DType dtype, std::vector<int64_t> axes, bool axes_input, bool keepdims,
               bool noop_empty)
      : op_(op), dtype_(dtype), axes_(std::move(axes)), axes_input_(axes_input),
        keepdims_(keepdims), noop_empty_(noop_empty) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    if (x.dtype != dtype_) fail("expected ", dtype_name(dtype_));
    std::vector<int64_t> axes = axes_;
    if (axes_input_) {
      const Tensor* a = opt(in, 1);
      axes = a ? read_ints(*a, "axes") : std::vector<int64_t>{};
    }
    const int64_t rank = x.rank();
    if (axes.empty() && noop_empty_) {
      out[0] = x.view(x.shape);
      return;
    }
    std::vector<bool> red(rank, axes.empty());
    for (int64_t a : axes) red[normalize_axis(a, rank)] = true;
    Shape yshape;
    for (int64_t i = 0; i < rank; ++i) {
      if (!red[i]) yshape.push_back(x.shape[i]);
      else if (keepdims_) yshape.push_back(1);
    }
    visit_numeric(dtype_, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (!std::is_same_v<T, bool>) out[0] = compute<T>(x, red, yshape, ctx.pool);
    });
  }

 private:
  template <class T>
  Tensor compute(const Tensor& x, const std::vector<bool>& red, const Shape& yshape,
                 ThreadPool* pool) const {
    using A = typename Acc<T>::type;
    // Groups: merged runs of dims with one role, size-1 dims dropped.
    std::vector<int64_t> size;
    std::vector<bool> is_red;
    int64_t count = 1;  // elements per reduction (for the mean)
    for (size_t i = 0; i < red.size(); ++i) {
      if (red[i]) count *= x.shape[i];
      if (x.shape[i] == 1) continue;
      if (!size.empty() && is_red.back() == red[i]) {
        size.back() *= x.shape[i];
      } else {
        size.push_back(x.shape[i]);
        is_red.push_back(red[i]);
      }
    }
    Tensor y = Tensor::empty(dtype_, yshape);
    const int64_t ny = y.numel();
    std::vector<A> acc(std::max<int64_t>(ny, 1));
    if (x.numel() == 0) {
      std::fill(acc.begin(), acc.end(), init_value<T, A>(op_));
    } else {
      // Reduce the innermost R group first, then the next ones on the accumulator.
      std::vector<A> tmp;
      bool first = true;
      const T* src_t = x.ptr<T>();
      const A* src_a = nullptr;
      for (size_t g = size.size(); g-- > 0;) {
        if (!is_red[g]) continue;
        int64_t outer = 1, inner = 1;
        for (size_t i = 0; i < g; ++i) outer *= size[i];
        for (size_t i = g + 1; i < size.size(); ++i) inner *= size[i];
        std::vector<A> dst(outer * inner);
        if (first) reduce_pass<T, A>(op_, true, src_t, dst.data(), outer, size[g], inner, pool);
        else reduce_pass<A, A>(op_, false, src_a, dst.data(), outer, size[g], inner, pool);
        tmp.swap(dst);
        src_a = tmp.data();
        size.erase(size.begin() + g);
        is_red.erase(is_red.begin() + g);
        first = false;
      }
      if (first) {  // nothing to reduce (all reduced dims are 1): still map and finalise
        for (int64_t i = 0; i < ny; ++i) acc[i] = first_map(op_, static_cast<A>(src_t[i]));
      } else {
        std::copy(tmp.begin(), tmp.begin() + ny, acc.begin());
      }
    }
    T* py = y.ptr<T>();
    for (int64_t i = 0; i < ny; ++i) {
      A v = acc[i];
      if (op_ == Red::mean) v = v / static_cast<A>(count);
      if (op_ == Red::l2) v = static_cast<A>(std::sqrt(static_cast<double>(v)));
      py[i] = static_cast<T>(v);
    }
    return y;
  }

  Red op_;
  DType dtype_;
  std::vector<int64_t> axes_;
  bool axes_input_, keepdims_, noop_empty_;
};

// axes_input_opset: the opset from which axes is an input instead of an attribute.
template <Red kOp, int kAxesInputOpset>
std::unique_ptr<Kernel> make_reduce(const KernelInit& init) {
  if (init.num_inputs() < 1 || init.num_outputs() != 1) return nullptr;
  const DType t = init.input_dtypes[0];
  const bool is_float = t == DType::f32 || t == DType::f64;
  if (!(is_float || t == DType::i64 || t == DType::i32)) return nullptr;
  if (!is_float && (kOp == Red::mean || kOp == Red::l2)) return nullptr;
  const bool axes_input = init.opset >= kAxesInputOpset;
  if (axes_input && init.has_input(1) && !is_int_index(init.input_dtypes[1])) return nullptr;
  return std::make_unique<ReduceKernel>(
      kOp, t, axes_input ? std::vector<int64_t>{} : init.attrs.get_ints("axes"), axes_input,
      init.attrs.get_int("keepdims", 1) != 0, init.attrs.get_int("noop_with_empty_axes", 0) != 0);
}
SLIVER_REGISTER_KERNEL("ReduceSum", (make_reduce<Red::sum, 13>));
SLIVER_REGISTER_KERNEL("ReduceMean", (make_reduce<Red::mean, 18>));
SLIVER_REGISTER_KERNEL("ReduceMax", (make_reduce<Red::max, 18>));
SLIVER_REGISTER_KERNEL("ReduceMin", (make_reduce<Red::min, 18>));
SLIVER_REGISTER_KERNEL("ReduceProd", (make_reduce<Red::prod, 18>));
SLIVER_REGISTER_KERNEL("ReduceSumSquare", (make_reduce<Red::sum_square, 18>));
SLIVER_REGISTER_KERNEL("ReduceL1", (make_reduce<Red::l1, 18>));
SLIVER_REGISTER_KERNEL("ReduceL2", (make_reduce<Red::l2, 18>));

}  // namespace
}  // namespace sliver::ops
