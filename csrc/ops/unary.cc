// Elementwise unary operators: activations and math functions on the f32_vunary kernels, plus
// the few integer forms models use (Neg, Abs, Relu, Clip on int32/int64).
#include <cmath>
#include <limits>

#include "ops/common.h"

namespace sliver::ops {
namespace {

constexpr int64_t kChunk = 16384;  // elements per parallel piece

class F32UnaryKernel final : public Kernel {
 public:
  // clip_inputs: Clip from opset 11, whose bounds are optional inputs 1 and 2.
  F32UnaryKernel(VUnary op, F32VUnaryParams p, bool clip_inputs = false)
      : fn_(f32_vunary(op)), p_(p), clip_inputs_(clip_inputs) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    if (x.dtype != DType::f32) fail("expected float input, got ", dtype_name(x.dtype));
    F32VUnaryParams p = p_;
    if (clip_inputs_) {
      if (const Tensor* lo = opt(in, 1)) p.alpha = static_cast<float>(read_scalar(*lo, "min"));
      if (const Tensor* hi = opt(in, 2)) p.beta = static_cast<float>(read_scalar(*hi, "max"));
    }
    Tensor y = output_reusing(ctx, in, {0}, DType::f32, x.shape);
    const float* px = x.ptr<float>();
    float* py = y.ptr<float>();
    const int64_t n = x.numel(), pieces = (n + kChunk - 1) / kChunk;
    parallel_for(ctx.pool, pieces, kChunk * 4.0, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const int64_t o = i * kChunk;
        fn_(std::min(kChunk, n - o), px + o, py + o, p);
      }
    });
    out[0] = std::move(y);
  }
  std::string describe() const override { return std::string("f32_vunary_") + f32_vunary_isa(); }

 private:
  F32VUnaryFn fn_;
  F32VUnaryParams p_;
  bool clip_inputs_;
};

template <VUnary kOp>
std::unique_ptr<Kernel> make_f32(const KernelInit& init) {
  if (init.num_inputs() < 1 || init.input_dtypes[0] != DType::f32) return nullptr;
  return std::make_unique<F32UnaryKernel>(kOp, F32VUnaryParams{});
}

std::unique_ptr<Kernel> make_leaky_relu(const KernelInit& init) {
  if (init.input_dtypes[0] != DType::f32) return nullptr;
  F32VUnaryParams p;
  p.alpha = static_cast<float>(init.attrs.get_float("alpha", 0.01));
  return std::make_unique<F32UnaryKernel>(VUnary::leaky_relu, p);
}

std::unique_ptr<Kernel> make_elu(const KernelInit& init) {
  if (init.input_dtypes[0] != DType::f32) return nullptr;
  F32VUnaryParams p;
  p.alpha = static_cast<float>(init.attrs.get_float("alpha", 1.0));
  return std::make_unique<F32UnaryKernel>(VUnary::elu, p);
}

std::unique_ptr<Kernel> make_hard_sigmoid(const KernelInit& init) {
  if (init.input_dtypes[0] != DType::f32) return nullptr;
  F32VUnaryParams p;
  p.alpha = static_cast<float>(init.attrs.get_float("alpha", 0.2));
  p.beta = static_cast<float>(init.attrs.get_float("beta", 0.5));
  return std::make_unique<F32UnaryKernel>(VUnary::hard_sigmoid, p);
}

std::unique_ptr<Kernel> make_hard_swish(const KernelInit& init) {
  if (init.input_dtypes[0] != DType::f32) return nullptr;
  return std::make_unique<F32UnaryKernel>(VUnary::hard_swish, F32VUnaryParams{1.f / 6, 0.5f});
}

std::unique_ptr<Kernel> make_gelu(const KernelInit& init) {
  if (init.input_dtypes[0] != DType::f32) return nullptr;
  const std::string approx = init.attrs.get_string("approximate", "none");
  if (approx != "none" && approx != "tanh") return nullptr;
  return std::make_unique<F32UnaryKernel>(approx == "tanh" ? VUnary::gelu_tanh : VUnary::gelu_erf,
                                          F32VUnaryParams{});
}

std::unique_ptr<Kernel> make_fast_gelu(const KernelInit& init) {
  if (init.num_inputs() != 1 || init.input_dtypes[0] != DType::f32) return nullptr;
  return std::make_unique<F32UnaryKernel>(VUnary::gelu_tanh, F32VUnaryParams{});
}

SLIVER_REGISTER_KERNEL("Relu", make_f32<VUnary::relu>);
SLIVER_REGISTER_KERNEL("Sigmoid", make_f32<VUnary::sigmoid>);
SLIVER_REGISTER_KERNEL("Tanh", make_f32<VUnary::tanh>);
SLIVER_REGISTER_KERNEL("Erf", make_f32<VUnary::erf>);
SLIVER_REGISTER_KERNEL("Exp", make_f32<VUnary::exp>);
SLIVER_REGISTER_KERNEL("Log", make_f32<VUnary::log>);
SLIVER_REGISTER_KERNEL("Sqrt", make_f32<VUnary::sqrt>);
SLIVER_REGISTER_KERNEL("Neg", make_f32<VUnary::neg>);
SLIVER_REGISTER_KERNEL("Abs", make_f32<VUnary::abs>);
SLIVER_REGISTER_KERNEL("Reciprocal", make_f32<VUnary::reciprocal>);
SLIVER_REGISTER_KERNEL("Softplus", make_f32<VUnary::softplus>);
SLIVER_REGISTER_KERNEL("LeakyRelu", make_leaky_relu);
SLIVER_REGISTER_KERNEL("Elu", make_elu);
SLIVER_REGISTER_KERNEL("HardSigmoid", make_hard_sigmoid);
SLIVER_REGISTER_KERNEL("HardSwish", make_hard_swish);
SLIVER_REGISTER_KERNEL("Gelu", make_gelu);
SLIVER_REGISTER_KERNEL("com.microsoft:Gelu", make_gelu);  // what passes/fuse_gelu writes
// onnxruntime's tanh-approximated GELU; passes/lower_contrib moves its bias input into an Add.
SLIVER_REGISTER_KERNEL("com.microsoft:FastGelu", make_fast_gelu);

// ---- Clip: attributes before opset 11, optional inputs after ----

std::unique_ptr<Kernel> make_clip_f32(const KernelInit& init) {
  if (init.input_dtypes[0] != DType::f32) return nullptr;
  F32VUnaryParams p;
  p.alpha = -std::numeric_limits<float>::infinity();
  p.beta = std::numeric_limits<float>::infinity();
  if (init.opset < 11) {
    p.alpha = static_cast<float>(init.attrs.get_float("min", p.alpha));
    p.beta = static_cast<float>(init.attrs.get_float("max", p.beta));
    return std::make_unique<F32UnaryKernel>(VUnary::clip, p);
  }
  return std::make_unique<F32UnaryKernel>(VUnary::clip, p, /*clip_inputs=*/true);
}
SLIVER_REGISTER_KERNEL("Clip", make_clip_f32);

// ---- integer forms ----

enum class IntUnary { neg, abs, relu, clip };

template <class T>
class IntUnaryKernel final : public Kernel {
 public:
  explicit IntUnaryKernel(IntUnary op) : op_(op) {}
  void run(RunContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    Tensor y = Tensor::empty(x.dtype, x.shape);
    T lo = std::numeric_limits<T>::lowest(), hi = std::numeric_limits<T>::max();
    if (op_ == IntUnary::clip) {
      if (const Tensor* t = opt(in, 1)) lo = t->ptr<T>()[0];
      if (const Tensor* t = opt(in, 2)) hi = t->ptr<T>()[0];
    }
    const T* px = x.ptr<T>();
    T* py = y.ptr<T>();
    const int64_t n = x.numel();
    for (int64_t i = 0; i < n; ++i) {
      const T v = px[i];
      switch (op_) {  // wrap-around negation, like numpy
        case IntUnary::neg: py[i] = static_cast<T>(T{0} - v); break;
        case IntUnary::abs: py[i] = v < 0 ? static_cast<T>(T{0} - v) : v; break;
        case IntUnary::relu: py[i] = v < 0 ? T{0} : v; break;
        case IntUnary::clip: py[i] = v < lo ? lo : (v > hi ? hi : v); break;
      }
    }
    out[0] = std::move(y);
  }

 private:
  IntUnary op_;
};

template <IntUnary kOp>
std::unique_ptr<Kernel> make_int(const KernelInit& init) {
  if (init.num_inputs() < 1) return nullptr;
  if (kOp == IntUnary::clip && init.opset < 12) return nullptr;  // int Clip starts at opset 12
  for (int i = 1; i < init.num_inputs(); ++i)
    if (init.has_input(i) && init.input_dtypes[i] != init.input_dtypes[0]) return nullptr;
  switch (init.input_dtypes[0]) {
    case DType::i64: return std::make_unique<IntUnaryKernel<int64_t>>(kOp);
    case DType::i32: return std::make_unique<IntUnaryKernel<int32_t>>(kOp);
    default: return nullptr;
  }
}
SLIVER_REGISTER_KERNEL("Neg", make_int<IntUnary::neg>);
SLIVER_REGISTER_KERNEL("Abs", make_int<IntUnary::abs>);
SLIVER_REGISTER_KERNEL("Relu", make_int<IntUnary::relu>);
SLIVER_REGISTER_KERNEL("Clip", make_int<IntUnary::clip>);

}  // namespace
}  // namespace sliver::ops
