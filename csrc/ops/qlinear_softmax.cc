// com.microsoft QLinearSoftmax, bit-exact with onnxruntime's CPU kernel (1.32, x86-64) and with
// sliver's Python op (python/sliver/ops/contrib.py), which states the same algorithm.
//
// The idea is onnxruntime's: softmax does not change when every input of a row moves by the same
// amount, so only a code's distance to the row's maximum matters, and exp() of the 256 possible
// distances is a table built once per (x_scale, row length d):
//
//   table[i] = float(exp((i - 255 + shift) * x_scale))          (code i; i - 128 for int8)
//   shift * x_scale = max(0, logf(FLT_MAX / d) - 5)
//
// The shift lifts the largest entry (the row maximum's, exp(shift * x_scale)) as high as a float
// sum of d entries allows with e^5 to spare. Per row, with e[k] = table[distance of x[k]] and
// sum = e[0] + e[1] + ... added left to right in float32:
//
//   y[k] = clamp(round_half_even(double(e[k]) * y_inv / double(sum)) + y_zero_point)
//   y_inv = floor(1.0f / y_scale) in float32 (the float64 quotient if that overflows)
//
// Every step is IEEE-exact as written (one float32 add per term, one float64 multiply and divide
// per output), so the row order and the thread split do not change results. logf is the C
// library's, as onnxruntime calls it (std::log of a float). Opset 13 reduces along `axis` only
// (rows are strided when it is not the last axis); older opsets flatten every axis from `axis` on
// into the row.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ops/common.h"
#include "ops/quant_util.h"
#include "sliver/kernel.h"

namespace sliver::ops {
namespace {

using ExpTable = std::array<float, 256>;

constexpr int kOpsetAxisOnly = 13;  // from this opset on, the row is one axis

std::shared_ptr<const ExpTable> make_exp_table(float x_scale, int64_t d, bool is_signed) {
  auto t = std::make_shared<ExpTable>();
  const float ratio = std::numeric_limits<float>::max() / static_cast<float>(d);
  const double head = static_cast<double>(std::log(ratio)) - 5.0;  // std::log(float) is logf
  const double shift = (head > 0.0 ? head : 0.0) / static_cast<double>(x_scale);
  for (int i = 0; i < 256; ++i) {
    const double v = std::exp((static_cast<double>(i) - 255.0 + shift) * x_scale);
    (*t)[static_cast<uint8_t>(is_signed ? i - 128 : i)] = static_cast<float>(v);
  }
  return t;
}

double y_inverse(float y_scale) {
  const double f = std::floor(1.0f / y_scale);
  return std::isfinite(f) ? f : std::floor(1.0 / static_cast<double>(y_scale));
}

/// Round half to even for |v| <= 2^51: the float64 add itself rounds (default rounding mode).
inline double round_even(double v) {
  constexpr double kMagic = 6755399441055744.0;  // 1.5 * 2^52
  return (q::opaque(v) + kMagic) - kMagic;
}

// One row of d codes at x[k * stride], written to y[k * stride]; e is d floats of scratch.
template <class T>
void softmax_row(const T* x, T* y, int64_t d, int64_t stride, const ExpTable& table, double y_inv,
                 int32_t y_zp, float* e) {
  T top = x[0];
  for (int64_t k = 1; k < d; ++k) top = std::max(top, x[k * stride]);
  // The maximum indexes entry 255 (127 for int8, whose codes are stored 128 places on).
  const int32_t adjust = (std::is_signed_v<T> ? 127 : 255) - static_cast<int32_t>(top);
  float sum = 0.f;
  for (int64_t k = 0; k < d; ++k) {
    e[k] = table[static_cast<uint8_t>(static_cast<int32_t>(x[k * stride]) + adjust)];
    sum += e[k];
  }
  const double dsum = sum;
  // Clamping to the integer bounds first equals rounding then saturating, and keeps NaN (only
  // for a zero y_scale) at the low end.
  const double lo = q::qmin<T>() - y_zp, hi = q::qmax<T>() - y_zp;
  for (int64_t k = 0; k < d; ++k) {
    double v = static_cast<double>(e[k]) * y_inv / dsum;
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    y[k * stride] = static_cast<T>(static_cast<int32_t>(round_even(v)) + y_zp);
  }
}

// Inputs: X, X_scale, X_zero_point (unused), Y_scale, Y_zero_point.
class QLinearSoftmaxKernel final : public Kernel {
 public:
  QLinearSoftmaxKernel(int opset, int64_t axis, std::shared_ptr<const ExpTable> fixed,
                       int64_t fixed_d, bool fixed_signed)
      : opset_(opset),
        axis_(axis),
        fixed_(std::move(fixed)),
        fixed_d_(fixed_d),
        fixed_signed_(fixed_signed) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    if (!q::is_q8(x.dtype))
      fail("QLinearSoftmax: x must be uint8 or int8, got ", dtype_name(x.dtype));
    if (x.rank() == 0) fail("QLinearSoftmax: x must have rank >= 1");
    const int64_t r = x.rank(), axis = normalize_axis(axis_, r);
    // x is [outer, d, inner]; opset < 13 folds everything from axis on into d.
    int64_t outer = 1, d = 1, inner = 1;
    for (int64_t i = 0; i < axis; ++i) outer *= x.shape[i];
    for (int64_t i = axis; i < r; ++i) {
      if (i == axis || opset_ < kOpsetAxisOnly) {
        d *= x.shape[i];
      } else {
        inner *= x.shape[i];
      }
    }
    out[0] = Tensor::empty(x.dtype, x.shape);
    if (x.numel() == 0) return;
    const Tensor* yz = opt(in, 4);
    if (yz && yz->dtype != x.dtype)
      fail("QLinearSoftmax: y_zero_point is ", dtype_name(yz->dtype), ", x is ",
           dtype_name(x.dtype));
    const double y_inv = y_inverse(q::scalar_f32(need(in, 3), "y_scale"));
    const int32_t y_zp = q::scalar_zp(yz, "y_zero_point");
    std::shared_ptr<const ExpTable> table =
        table_for(q::scalar_f32(need(in, 1), "x_scale"), d, x.dtype == DType::i8);
    if (x.dtype == DType::u8) {
      compute<uint8_t>(ctx, x, out[0], outer, d, inner, *table, y_inv, y_zp);
    } else {
      compute<int8_t>(ctx, x, out[0], outer, d, inner, *table, y_inv, y_zp);
    }
  }
  std::string describe() const override { return "native QLinearSoftmax (exp table)"; }

 private:
  template <class T>
  static void compute(RunContext& ctx, const Tensor& x, Tensor& y, int64_t outer, int64_t d,
                      int64_t inner, const ExpTable& table, double y_inv, int32_t y_zp) {
    const T* px = x.ptr<T>();
    T* py = y.ptr<T>();
    parallel_for(ctx.pool, outer * inner, 4.0 * d, [&](int64_t b, int64_t e) {
      std::vector<float> scratch(static_cast<size_t>(d));
      for (int64_t row = b; row < e; ++row) {
        const int64_t o = row / inner, i = row % inner;
        const int64_t base = o * d * inner + i;
        softmax_row<T>(px + base, py + base, d, inner, table, y_inv, y_zp, scratch.data());
      }
    });
  }

  // The table for this x_scale and row length: fixed at creation when both were known, else
  // the last one built (sessions may run from several threads, hence the lock).
  std::shared_ptr<const ExpTable> table_for(float x_scale, int64_t d, bool is_signed) {
    if (fixed_ && d == fixed_d_ && is_signed == fixed_signed_) return fixed_;
    std::lock_guard<std::mutex> lock(mu_);
    if (!last_ || last_d_ != d || last_signed_ != is_signed ||
        std::memcmp(&last_scale_, &x_scale, sizeof(float)) != 0) {
      last_ = make_exp_table(x_scale, d, is_signed);
      last_scale_ = x_scale;
      last_d_ = d;
      last_signed_ = is_signed;
    }
    return last_;
  }

  int opset_;
  int64_t axis_;
  std::shared_ptr<const ExpTable> fixed_;
  int64_t fixed_d_;
  bool fixed_signed_;
  std::mutex mu_;
  std::shared_ptr<const ExpTable> last_;
  float last_scale_ = 0.f;
  int64_t last_d_ = 0;
  bool last_signed_ = false;
};

std::unique_ptr<Kernel> make_qlinear_softmax(const KernelInit& init) {
  if (init.num_inputs() < 4 || init.num_outputs() != 1) return nullptr;
  const DType xt = q::q8_dtype(init, 0, 4);
  if (xt != DType::undefined && !q::is_q8(xt)) return nullptr;
  for (int i : {1, 3})
    if (init.has_input(i) && in_dtype(init, i) != DType::f32) return nullptr;
  const int opset = static_cast<int>(init.attrs.get_int("opset", kOpsetAxisOnly));
  // -1 is the schema's default for every opset (onnxruntime's "1 before opset 13" branch is
  // unreachable: the schema fills the attribute in).
  const int64_t axis = init.attrs.get_int("axis", -1);
  // The table can be built now when x_scale is a constant and the row length is static.
  std::shared_ptr<const ExpTable> fixed;
  int64_t fixed_d = 0;
  const StaticShape& xs = init.input_shapes.empty() ? StaticShape{} : init.input_shapes[0];
  const Tensor* x_scale = q::const_input(init, 1);
  if (q::is_q8(xt) && x_scale && x_scale->dtype == DType::f32 && x_scale->numel() == 1 &&
      xs.known && !xs.dims.empty()) {
    const int64_t r = static_cast<int64_t>(xs.dims.size());
    if (axis >= -r && axis < r) {
      const int64_t a = axis < 0 ? axis + r : axis;
      int64_t d = 1;
      for (int64_t i = a; i < (opset < kOpsetAxisOnly ? r : a + 1); ++i)
        d = xs.dims[i] > 0 && d > 0 ? d * xs.dims[i] : -1;
      if (d > 0) {
        fixed = make_exp_table(x_scale->ptr<float>()[0], d, xt == DType::i8);
        fixed_d = d;
      }
    }
  }
  return std::make_unique<QLinearSoftmaxKernel>(opset, axis, std::move(fixed), fixed_d,
                                                xt == DType::i8);
}

}  // namespace

SLIVER_REGISTER_KERNEL("com.microsoft:QLinearSoftmax", make_qlinear_softmax);

}  // namespace sliver::ops
