// Softmax and LogSoftmax.
//
// Before opset 13 the input is coerced to 2-D at `axis` ([prod(d[:axis]), prod(d[axis:])], axis
// default 1) and the softmax runs over whole rows of that matrix; from opset 13 it runs along the
// single dimension `axis` (default -1). Both become [outer, D, inner]: inner == 1 is a row per
// softmax (the common case); otherwise the D values of one softmax are `inner` apart and the
// row operations run across `inner` positions at once.
#include <cmath>

#include "ops/common.h"

namespace sliver::ops {
namespace {

class SoftmaxKernel final : public Kernel {
 public:
  SoftmaxKernel(int64_t axis, bool coerce_2d, bool log) : axis_(axis), coerce_2d_(coerce_2d), log_(log) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    if (x.dtype != DType::f32) fail("expected float input");
    const int64_t r = x.rank();
    if (r == 0) fail("softmax of a scalar");
    const int64_t axis = normalize_axis(axis_, r);
    int64_t outer = 1, d = 1, inner = 1;
    for (int64_t i = 0; i < axis; ++i) outer *= x.shape[i];
    if (coerce_2d_) {
      for (int64_t i = axis; i < r; ++i) d *= x.shape[i];
    } else {
      d = x.shape[axis];
      for (int64_t i = axis + 1; i < r; ++i) inner *= x.shape[i];
    }
    Tensor y = Tensor::empty(DType::f32, x.shape);
    const float* px = x.ptr<float>();
    float* py = y.ptr<float>();
    if (inner == 1) {
      parallel_for(ctx.pool, outer, d * 8.0, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) row(px + i * d, py + i * d, d);
      });
    } else {
      parallel_for(ctx.pool, outer, d * inner * 8.0, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) strided(px + i * d * inner, py + i * d * inner, d, inner);
      });
    }
    out[0] = std::move(y);
  }

  std::string describe() const override { return std::string("f32_vunary_") + f32_vunary_isa(); }

 private:
  // One softmax over n contiguous values: y = exp(x - max) / sum, or x - max - log(sum).
  // Softmax takes three passes after the max: exp(x - max) in one (exp_shift), the sum, and a
  // product with 1 / sum (within an ulp of the division, which cost a pass of vdivps).
  void row(const float* x, float* y, int64_t n) const {
    const float m = row_max(x, n);
    if (log_) {
      const F32VBinaryKernels& sub = f32_vbinary(VBinary::sub);
      sub.vs(n, x, &m, y);
      float* e = thread_scratch(0, n);
      f32_vunary(VUnary::exp)(n, y, e, {});
      const float s = std::log(row_sum(e, n));
      sub.vs(n, y, &s, y);
    } else {
      F32VUnaryParams shift;
      shift.alpha = -m;
      f32_vunary(VUnary::exp_shift)(n, x, y, shift);
      F32VUnaryParams scale;
      scale.alpha = 1.f / row_sum(y, n);
      f32_vunary(VUnary::affine)(n, y, y, scale);
    }
  }

  // d softmaxes at once, element j of softmax i at x[j * inner + i].
  void strided(const float* x, float* y, int64_t d, int64_t inner) const {
    float* m = thread_scratch(0, 2 * inner);
    float* s = m + inner;
    const F32VBinaryKernels& sub = f32_vbinary(VBinary::sub);
    const F32VBinaryKernels& add = f32_vbinary(VBinary::add);
    const F32VBinaryKernels& mx = f32_vbinary(VBinary::max);
    std::copy(x, x + inner, m);
    for (int64_t j = 1; j < d; ++j) mx.vv(inner, m, x + j * inner, m);
    std::fill(s, s + inner, 0.f);
    const F32VUnaryFn exp = f32_vunary(VUnary::exp);
    for (int64_t j = 0; j < d; ++j) {
      float* yr = y + j * inner;
      sub.vv(inner, x + j * inner, m, yr);
      if (log_) {
        float* e = thread_scratch(1, inner);
        exp(inner, yr, e, {});
        add.vv(inner, s, e, s);
      } else {
        exp(inner, yr, yr, {});
        add.vv(inner, s, yr, s);
      }
    }
    if (log_) {
      f32_vunary(VUnary::log)(inner, s, s, {});
      for (int64_t j = 0; j < d; ++j) sub.vv(inner, y + j * inner, s, y + j * inner);
    } else {
      const F32VBinaryKernels& div = f32_vbinary(VBinary::div);
      for (int64_t j = 0; j < d; ++j) div.vv(inner, y + j * inner, s, y + j * inner);
    }
  }

  int64_t axis_;
  bool coerce_2d_, log_;
};

template <bool kLog>
std::unique_ptr<Kernel> make_softmax(const KernelInit& init) {
  if (init.num_inputs() != 1 || init.input_dtypes[0] != DType::f32) return nullptr;
  const bool coerce = init.opset < 13;
  return std::make_unique<SoftmaxKernel>(init.attrs.get_int("axis", coerce ? 1 : -1), coerce, kLog);
}
SLIVER_REGISTER_KERNEL("Softmax", make_softmax<false>);
SLIVER_REGISTER_KERNEL("LogSoftmax", make_softmax<true>);

}  // namespace
}  // namespace sliver::ops
