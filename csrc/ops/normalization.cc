// BatchNormalization (inference), LayerNormalization, InstanceNormalization.
//
// All three end in a per-slice affine map y = a * x + b (the f32_vunary "affine" kernel): batch
// norm has one (a, b) per channel, fixed by its statistics; layer and instance norm compute mean
// and variance per slice first (two passes: the mean, then squared deviations, which is more
// accurate than E[x^2] - E[x]^2).
#include <cmath>

#include "ops/common.h"

namespace sliver::ops {
namespace {

// y[n, c, ...] = a[c] * x[n, c, ...] + b[c] over planes of `inner` elements.
void channel_affine(const float* x, float* y, int64_t n, int64_t c, int64_t inner, const float* a,
                    const float* b, ThreadPool* pool) {
  const F32VUnaryFn affine = f32_vunary(VUnary::affine);
  parallel_for(pool, n * c, inner * 2.0, [&](int64_t s, int64_t e) {
    for (int64_t p = s; p < e; ++p) {
      const int64_t ch = p % c;
      affine(inner, x + p * inner, y + p * inner, F32VUnaryParams{a[ch], b[ch]});
    }
  });
}

/// Broadcasts a float tensor to `count` values laid out as `target` (scale/bias inputs given with
/// fewer dims than the slice they apply to).
std::vector<float> expand_f32(const Tensor& t, const Shape& target, const char* what) {
  if (t.dtype != DType::f32) fail(what, " must be float");
  std::vector<float> v(shape_numel(target));
  if (t.numel() == static_cast<int64_t>(v.size())) {
    std::copy(t.ptr<float>(), t.ptr<float>() + v.size(), v.begin());
    return v;
  }
  if (broadcast_shapes({t.shape, target}) != target)
    fail(what, " of shape ", shape_str(t.shape), " does not broadcast to ", shape_str(target));
  const float zero = 0.f;
  binary_f32(VBinary::add, t.ptr<float>(), t.shape, &zero, {}, v.data(), target, nullptr);
  return v;
}

// ---- BatchNormalization ----

class BatchNormKernel final : public Kernel {
 public:
  BatchNormKernel(double eps, const KernelInit& init) : eps_(eps) {
    bool all_const = true;
    for (int i = 1; i < 5; ++i) all_const &= init.is_const(i);
    if (all_const) {
      std::vector<const Tensor*> in(5, nullptr);
      for (int i = 1; i < 5; ++i) in[i] = &init.const_inputs[i];
      fold(in, &a_, &b_);
    }
  }

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    if (x.dtype != DType::f32 || x.rank() < 2) fail("expected float input of rank >= 2");
    const int64_t n = x.shape[0], c = x.shape[1], inner = x.numel() / std::max<int64_t>(n * c, 1);
    std::vector<float> a = a_, b = b_;
    if (a.empty()) fold(in, &a, &b);
    if (static_cast<int64_t>(a.size()) != c)
      fail("input has ", c, " channels, the statistics ", a.size());
    Tensor y = Tensor::empty(DType::f32, x.shape);
    channel_affine(x.ptr<float>(), y.ptr<float>(), n, c, inner, a.data(), b.data(), ctx.pool);
    out[0] = std::move(y);
  }
  std::string describe() const override { return std::string("f32_vunary_") + f32_vunary_isa(); }

 private:
  // a = scale / sqrt(var + eps), b = bias - mean * a (in double, rounded once).
  void fold(const std::vector<const Tensor*>& in, std::vector<float>* a, std::vector<float>* b) const {
    const Tensor& scale = need(in, 1);
    const Tensor& bias = need(in, 2);
    const Tensor& mean = need(in, 3);
    const Tensor& var = need(in, 4);
    const int64_t c = scale.numel();
    for (const Tensor* t : {&scale, &bias, &mean, &var})
      if (t->dtype != DType::f32 || t->numel() != c) fail("scale, B, mean and var must be float[C]");
    a->resize(c);
    b->resize(c);
    for (int64_t i = 0; i < c; ++i) {
      const double s = scale.ptr<float>()[i] / std::sqrt(static_cast<double>(var.ptr<float>()[i]) + eps_);
      (*a)[i] = static_cast<float>(s);
      (*b)[i] = static_cast<float>(bias.ptr<float>()[i] - mean.ptr<float>()[i] * s);
    }
  }

  double eps_;
  std::vector<float> a_, b_;
};

std::unique_ptr<Kernel> make_batchnorm(const KernelInit& init) {
  if (init.num_inputs() != 5) return nullptr;
  for (DType t : init.input_dtypes)
    if (t != DType::f32) return nullptr;
  for (int i = 1; i < init.num_outputs(); ++i)
    if (init.output_dtypes[i] != DType::undefined) return nullptr;  // training statistics
  if (init.attrs.get_int("training_mode", 0) != 0 || init.attrs.get_int("spatial", 1) != 1)
    return nullptr;
  return std::make_unique<BatchNormKernel>(init.attrs.get_float("epsilon", 1e-5), init);
}
SLIVER_REGISTER_KERNEL("BatchNormalization", make_batchnorm);

// ---- LayerNormalization: normalise over dims[axis:], then scale and bias ----

class LayerNormKernel final : public Kernel {
 public:
  LayerNormKernel(int64_t axis, float eps) : axis_(axis), eps_(eps) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    if (x.dtype != DType::f32) fail("expected float input");
    const int64_t axis = normalize_axis(axis_, x.rank());
    const Shape norm_shape(x.shape.begin() + axis, x.shape.end());
    const int64_t d = shape_numel(norm_shape), rows = d ? x.numel() / d : 0;
    const std::vector<float> scale = expand_f32(need(in, 1), norm_shape, "Scale");
    std::vector<float> bias;
    if (const Tensor* b = opt(in, 2)) bias = expand_f32(*b, norm_shape, "B");
    Tensor y = Tensor::empty(DType::f32, x.shape);
    Shape stat_shape = x.shape;
    for (int64_t i = axis; i < x.rank(); ++i) stat_shape[i] = 1;
    Tensor mean_t, inv_t;
    if (out.size() > 1) mean_t = Tensor::empty(DType::f32, stat_shape);
    if (out.size() > 2) inv_t = Tensor::empty(DType::f32, stat_shape);
    const float* px = x.ptr<float>();
    float* py = y.ptr<float>();
    const F32VUnaryFn affine = f32_vunary(VUnary::affine);
    const F32VBinaryKernels& mul = f32_vbinary(VBinary::mul);
    const F32VBinaryKernels& add = f32_vbinary(VBinary::add);
    parallel_for(ctx.pool, rows, d * 6.0, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const float* xr = px + r * d;
        float* yr = py + r * d;
        const float mean = row_sum(xr, d) / static_cast<float>(d);
        const float var = row_sum_sq_dev(xr, d, mean) / static_cast<float>(d);
        const float inv = 1.f / std::sqrt(var + eps_);
        // (x - mean) first: x * inv - mean * inv cancels badly on a near-constant row, where
        // inv = 1 / sqrt(eps) is huge (BERT's eps 1e-12 turned exact zeros into ~0.06).
        affine(d, xr, yr, F32VUnaryParams{1.f, -mean});
        affine(d, yr, yr, F32VUnaryParams{inv, 0.f});
        mul.vv(d, yr, scale.data(), yr);
        if (!bias.empty()) add.vv(d, yr, bias.data(), yr);
        if (mean_t.defined()) mean_t.ptr<float>()[r] = mean;
        if (inv_t.defined()) inv_t.ptr<float>()[r] = inv;
      }
    });
    out[0] = std::move(y);
    if (out.size() > 1) out[1] = std::move(mean_t);
    if (out.size() > 2) out[2] = std::move(inv_t);
  }
  std::string describe() const override { return std::string("f32_vunary_") + f32_vunary_isa(); }

 private:
  int64_t axis_;
  float eps_;
};

std::unique_ptr<Kernel> make_layernorm(const KernelInit& init) {
  if (init.num_inputs() < 2) return nullptr;
  for (int i = 0; i < init.num_inputs(); ++i)
    if (init.has_input(i) && init.input_dtypes[i] != DType::f32) return nullptr;
  if (init.attrs.get_int("stash_type", 1) != 1) return nullptr;
  return std::make_unique<LayerNormKernel>(init.attrs.get_int("axis", -1),
                                           static_cast<float>(init.attrs.get_float("epsilon", 1e-5)));
}
SLIVER_REGISTER_KERNEL("LayerNormalization", make_layernorm);

// ---- InstanceNormalization: per (n, c) plane statistics, per-channel scale and bias ----

class InstanceNormKernel final : public Kernel {
 public:
  explicit InstanceNormKernel(float eps) : eps_(eps) {}
  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    const Tensor& scale = need(in, 1);
    const Tensor& bias = need(in, 2);
    if (x.dtype != DType::f32 || x.rank() < 2) fail("expected float input of rank >= 2");
    const int64_t n = x.shape[0], c = x.shape[1], inner = x.numel() / std::max<int64_t>(n * c, 1);
    if (scale.numel() != c || bias.numel() != c) fail("scale and B must have C elements");
    Tensor y = Tensor::empty(DType::f32, x.shape);
    const float* px = x.ptr<float>();
    float* py = y.ptr<float>();
    const F32VUnaryFn affine = f32_vunary(VUnary::affine);
    parallel_for(ctx.pool, n * c, inner * 4.0, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        const float* xp = px + p * inner;
        const float mean = row_sum(xp, inner) / static_cast<float>(inner);
        const float var = row_sum_sq_dev(xp, inner, mean) / static_cast<float>(inner);
        const float a = scale.ptr<float>()[p % c] / std::sqrt(var + eps_);
        affine(inner, xp, py + p * inner, F32VUnaryParams{a, bias.ptr<float>()[p % c] - mean * a});
      }
    });
    out[0] = std::move(y);
  }

 private:
  float eps_;
};

std::unique_ptr<Kernel> make_instancenorm(const KernelInit& init) {
  if (init.num_inputs() != 3) return nullptr;
  for (DType t : init.input_dtypes)
    if (t != DType::f32) return nullptr;
  return std::make_unique<InstanceNormKernel>(static_cast<float>(init.attrs.get_float("epsilon", 1e-5)));
}
SLIVER_REGISTER_KERNEL("InstanceNormalization", make_instancenorm);

}  // namespace
}  // namespace sliver::ops
