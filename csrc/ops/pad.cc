// Pad: constant / reflect / edge / wrap, any fixed-size dtype, negative pads (cropping) included.
//
// Each axis gets a map from output index to input index (or -1: the constant). Rows of the last
// axis are then built from the map: the interior is one memcpy, the borders element by element;
// rows whose outer indices map to -1 are all constant.
#include <cstring>

#include "ops/common.h"

namespace sliver::ops {
namespace {

enum class PadMode { constant, reflect, edge, wrap };

// Input index for output index o (pads `pb` before an axis of n), or -1 for the constant.
int64_t source_index(PadMode mode, int64_t o, int64_t pb, int64_t n) {
  int64_t i = o - pb;
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PadMode::constant: return -1;
    case PadMode::edge: return i < 0 ? 0 : n - 1;
    case PadMode::wrap: return ((i % n) + n) % n;
    case PadMode::reflect: {
      if (n == 1) return 0;
      const int64_t period = 2 * (n - 1);
      i = ((i % period) + period) % period;
      return i < n ? i : period - i;
    }
  }
  return -1;
}

class PadKernel final : public Kernel {
 public:
  PadKernel(PadMode mode, bool from_inputs, std::vector<int64_t> pads, double value)
      : mode_(mode), from_inputs_(from_inputs), pads_(std::move(pads)), value_(value) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    const int64_t r = x.rank();
    std::vector<int64_t> pads = pads_;
    double value = value_;
    if (from_inputs_) {
      const std::vector<int64_t> p = read_ints(need(in, 1), "pads");
      const Tensor* cv = opt(in, 2);
      if (cv && cv->numel() > 0) value = read_scalar(*cv, "constant_value");
      std::vector<int64_t> axes;
      if (const Tensor* a = opt(in, 3)) axes = read_ints(*a, "axes");
      if (axes.empty()) {
        pads = p;
      } else {
        if (p.size() != 2 * axes.size()) fail("pads has ", p.size(), " entries for ", axes.size(), " axes");
        pads.assign(2 * r, 0);
        for (size_t k = 0; k < axes.size(); ++k) {
          const int64_t a = normalize_axis(axes[k], r);
          pads[a] = p[k];
          pads[r + a] = p[axes.size() + k];
        }
      }
    }
    if (static_cast<int64_t>(pads.size()) != 2 * r) fail("pads has ", pads.size(), " entries for rank ", r);
    Shape ys(r);
    std::vector<std::vector<int64_t>> maps(r);
    for (int64_t a = 0; a < r; ++a) {
      ys[a] = x.shape[a] + pads[a] + pads[r + a];
      if (ys[a] < 0) fail("pads make axis ", a, " negative");
      if (mode_ != PadMode::constant && x.shape[a] == 0 && ys[a] > 0)
        fail("cannot ", mode_ == PadMode::edge ? "edge" : "reflect/wrap", "-pad an empty axis");
      maps[a].resize(ys[a]);
      for (int64_t o = 0; o < ys[a]; ++o) maps[a][o] = source_index(mode_, o, pads[a], x.shape[a]);
    }
    Tensor y = Tensor::empty(x.dtype, ys);
    if (y.numel() > 0) {
      visit_bits(x.dtype, [&](auto tag) {
        using U = decltype(tag);
        fill<U>(x, y, maps, value, r ? pads[r - 1] : 0, ctx.pool);
      });
    }
    out[0] = std::move(y);
  }

 private:
  template <class U>
  void fill(const Tensor& x, Tensor& y, const std::vector<std::vector<int64_t>>& maps, double value,
            int64_t pb_last, ThreadPool* pool) const {
    U cval;  // the constant in the tensor's own dtype
    visit_numeric(x.dtype, [&](auto t) {
      using T = decltype(t);
      const T v = static_cast<T>(value);
      std::memcpy(&cval, &v, sizeof(U));
    });
    const int64_t r = x.rank();
    if (r == 0) {
      y.ptr<U>()[0] = x.ptr<U>()[0];
      return;
    }
    const int64_t row = y.shape.back(), rows = y.numel() / row;
    const std::vector<int64_t>& last = maps.back();
    // The interior of the last axis: outputs [lo, hi) are inputs [lo - pb, hi - pb).
    const int64_t lo = std::clamp<int64_t>(pb_last, 0, row);
    const int64_t hi = std::clamp<int64_t>(pb_last + x.shape.back(), lo, row);
    const U* px = x.ptr<U>();
    U* py = y.ptr<U>();
    const int64_t in_row = x.shape.back();
    parallel_for(pool, rows, static_cast<double>(row), [&](int64_t b, int64_t e) {
      for (int64_t q = b; q < e; ++q) {
        // Source row of output row q, or -1 when an outer index is in constant padding.
        int64_t src = 0, rem = q, mult = 1;
        for (int64_t a = r - 2; a >= 0 && src >= 0; --a) {
          const int64_t o = rem % y.shape[a];
          rem /= y.shape[a];
          const int64_t i = maps[a][o];
          if (i < 0) src = -1;
          else src += i * mult;
          mult *= x.shape[a];
        }
        U* dst = py + q * row;
        if (src < 0) {
          std::fill(dst, dst + row, cval);
          continue;
        }
        const U* s = px + src * in_row;
        for (int64_t o = 0; o < lo; ++o) dst[o] = last[o] < 0 ? cval : s[last[o]];
        if (hi > lo) std::memcpy(dst + lo, s + (lo - pb_last), (hi - lo) * sizeof(U));
        for (int64_t o = hi; o < row; ++o) dst[o] = last[o] < 0 ? cval : s[last[o]];
      }
    });
  }

  PadMode mode_;
  bool from_inputs_;
  std::vector<int64_t> pads_;
  double value_;
};

std::unique_ptr<Kernel> make_pad(const KernelInit& init) {
  const DType t = init.input_dtypes[0];
  bool numeric = false;
  visit_numeric(t, [&](auto) { numeric = true; });
  if (!numeric) return nullptr;
  const std::string m = init.attrs.get_string("mode", "constant");
  PadMode mode;
  if (m == "constant") mode = PadMode::constant;
  else if (m == "reflect") mode = PadMode::reflect;
  else if (m == "edge") mode = PadMode::edge;
  else if (m == "wrap") mode = PadMode::wrap;
  else return nullptr;
  if (init.opset < 11)
    return std::make_unique<PadKernel>(mode, false, init.attrs.get_ints("pads"), init.attrs.get_float("value", 0.0));
  if (!init.has_input(1) || !is_int_index(init.input_dtypes[1])) return nullptr;
  if (init.has_input(3) && !is_int_index(init.input_dtypes[3])) return nullptr;
  return std::make_unique<PadKernel>(mode, true, std::vector<int64_t>{}, 0.0);
}
SLIVER_REGISTER_KERNEL("Pad", make_pad);

}  // namespace
}  // namespace sliver::ops
