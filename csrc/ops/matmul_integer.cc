// MatMulInteger and ConvInteger: exact int32 sums (a - a_zp)(b - b_zp) on the int8 GEMM, which
// are the whole result (no float step), so every input is bit-exact with onnx.reference as long
// as the true sums fit in int32 (the ops' own contract).
//
// Also com.microsoft MatMulIntegerToFloat and DynamicQuantizeMatMul (bit-exact with
// onnxruntime): y = float(sum) * (a_scale * b_scale[n]) + bias[n], multiply then add. The
// dynamic one first quantizes A to u8 with onnxruntime's per-tensor parameters.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ops/common.h"
#include "ops/dynamic_quant.h"
#include "ops/q8_conv.h"
#include "ops/q8_matmul.h"
#include "ops/quant_util.h"
#include "sliver/kernel.h"

namespace sliver::ops {
namespace {

// Inputs: A, B, a_zero_point, b_zero_point. B constant: packed once; else packed per run.
class MatMulIntegerKernel final : public Kernel {
 public:
  explicit MatMulIntegerKernel(std::shared_ptr<q::PackedB8> b) : b_(std::move(b)) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& a = need(in, 0);
    const Tensor* az = opt(in, 2);
    if (az && az->numel() != 1)
      fail("MatMulInteger: a_zero_point must be a scalar here, got ", shape_str(az->shape));
    const int32_t a_zp = q::scalar_zp(az, "a_zero_point");
    std::shared_ptr<q::PackedB8> b = b_;
    if (!b) {
      const Tensor& bt = need(in, 1);
      const Tensor* bz = opt(in, 3);
      const int64_t N = bt.rank() >= 2 ? bt.shape.back() : 1;
      b = std::make_shared<q::PackedB8>(
          q::pack_b8(bt,
                     bz ? q::zp_values(bz, bz->numel() == 1 ? 1 : N, "b_zero_point")
                        : std::vector<int32_t>{0},
                     false, /*per_run=*/true));
    }
    out[0] = Tensor::empty(DType::i32, q::matmul_shape(a.shape, b->b_shape));
    q::q8_matmul(ctx.pool, a, *b, a_zp, out[0],
                 [](QGemmArgs& g) { g.output = QGemmOutput::int32; });
  }
  std::string describe() const override {
    return b_ ? "native MatMulInteger (q8 gemm)"
              : "native MatMulInteger (q8 gemm, B packed per run)";
  }

 private:
  std::shared_ptr<q::PackedB8> b_;
};

std::unique_ptr<Kernel> make_matmul_integer(const KernelInit& init) {
  if (init.num_inputs() < 2) return nullptr;
  for (int i : {0, 1}) {
    const DType t = in_dtype(init, i);
    if (t != DType::undefined && !q::is_q8(t)) return nullptr;
  }
  if (init.is_const(2) && init.const_inputs[2].numel() != 1) return nullptr;  // per-row a_zp
  if (!init.is_const(1)) return std::make_unique<MatMulIntegerKernel>(nullptr);
  const Tensor& b = init.const_inputs[1];
  if (!q::is_q8(b.dtype) || b.rank() < 1) return nullptr;
  if (init.has_input(3) && !init.is_const(3)) return std::make_unique<MatMulIntegerKernel>(nullptr);
  const Tensor* bz = q::const_input(init, 3);
  const int64_t N = b.rank() >= 2 ? b.shape.back() : 1;
  if (bz && (bz->dtype != b.dtype || (bz->numel() != 1 && (bz->numel() != N || b.rank() < 2))))
    return nullptr;
  std::vector<int32_t> zp = q::zp_list(bz, "b_zero_point");
  return std::make_unique<MatMulIntegerKernel>(std::make_shared<q::PackedB8>(q::pack_b8(b, zp)));
}

// Inputs: x, w, x_zero_point, w_zero_point.
class ConvIntegerKernel final : public Kernel {
 public:
  explicit ConvIntegerKernel(q::Q8Conv conv) : conv_(std::move(conv)) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    q::ConvOutputParams op;  // int32 output
    conv_.compute(ctx.pool, x, q::scalar_zp(opt(in, 2), "x_zero_point"), op, out[0]);
  }
  std::string describe() const override { return conv_.describe(); }

 private:
  q::Q8Conv conv_;
};

std::unique_ptr<Kernel> make_conv_integer(const KernelInit& init) {
  if (init.num_inputs() < 2 || !init.is_const(1) || !q::const_or_missing(init, 3)) return nullptr;
  if (init.is_const(2) && init.const_inputs[2].numel() != 1) return nullptr;
  const Tensor& w = init.const_inputs[1];
  if (!q::is_q8(w.dtype)) return nullptr;
  q::ConvGeometry g;
  if (!q::parse_conv(init.attrs, w.shape, &g)) return nullptr;
  const Tensor* wz = q::const_input(init, 3);
  if (wz && (wz->dtype != w.dtype || (wz->numel() != 1 && wz->numel() != g.oc))) return nullptr;
  std::vector<int32_t> zp = q::zp_list(wz, "w_zero_point");
  return std::make_unique<ConvIntegerKernel>(q::Q8Conv("ConvInteger", g, w, std::move(zp), {}));
}

// ---- MatMulIntegerToFloat / DynamicQuantizeMatMul ----

// Inputs (to float): A, B, a_scale, b_scale, a_zero_point, b_zero_point, bias.
// Inputs (dynamic):  A (float), B, b_scale, b_zero_point, bias.
class MatMulToFloatKernel final : public Kernel {
 public:
  MatMulToFloatKernel(bool dynamic, q::PackedB8 b) : dynamic_(dynamic), b_(std::move(b)) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const char* op = dynamic_ ? "DynamicQuantizeMatMul" : "MatMulIntegerToFloat";
    const Tensor& a_in = need(in, 0);
    const int64_t N = b_.mats[0]->N;
    const std::vector<float> b_scale = q::scale_values(need(in, dynamic_ ? 2 : 3), N, "b_scale");
    const Tensor* bias = opt(in, dynamic_ ? 4 : 6);
    if (bias && (bias->dtype != DType::f32 || bias->numel() != N))
      fail(op, ": bias ", shape_str(bias->shape), " must be float32 [", N, "]");
    Tensor a = a_in;
    float a_scale = 0.f;
    int32_t a_zp = 0;
    if (dynamic_) {
      if (a_in.dtype != DType::f32) fail(op, ": A must be float32");
      const q::DynamicParams p =
          q::dynamic_params(ctx.pool, a_in.ptr<float>(), a_in.numel(), q::DynamicRule::onnxruntime);
      a_scale = p.scale;
      a_zp = p.zero_point;
      a = Tensor::empty(DType::u8, a_in.shape);
      q::quantize_u8(ctx.pool, a_in.ptr<float>(), a_in.numel(), p, a.ptr<uint8_t>());
    } else {
      a_scale = q::scalar_f32(need(in, 2), "a_scale");
      a_zp = q::scalar_zp(opt(in, 4), "a_zero_point");
    }
    out[0] = Tensor::empty(DType::f32, q::matmul_shape(a.shape, b_.b_shape));
    q::q8_matmul(ctx.pool, a, b_, a_zp, out[0], [&](QGemmArgs& g) {
      g.output = QGemmOutput::float32;
      g.a_scale = a_scale;
      g.b_scale = b_scale.data();
      g.b_scale_per_column = true;
      g.float_bias = bias ? bias->ptr<float>() : nullptr;
    });
  }
  std::string describe() const override {
    return dynamic_ ? "native DynamicQuantizeMatMul (q8 gemm)"
                    : "native MatMulIntegerToFloat (q8 gemm)";
  }

 private:
  bool dynamic_;
  q::PackedB8 b_;
};

std::unique_ptr<Kernel> make_to_float(const KernelInit& init, bool dynamic) {
  const int zp_input = dynamic ? 3 : 5;
  if (init.num_inputs() < (dynamic ? 3 : 4) || !init.is_const(1)) return nullptr;
  if (!q::const_or_missing(init, zp_input)) return nullptr;
  const Tensor& b = init.const_inputs[1];
  if (!q::is_q8(b.dtype) || b.rank() != 2) return nullptr;
  const int64_t N = b.shape[1];
  const Tensor* bz = q::const_input(init, zp_input);
  if (bz && (bz->dtype != b.dtype || (bz->numel() != 1 && bz->numel() != N))) return nullptr;
  if (!dynamic && init.is_const(4) && init.const_inputs[4].numel() != 1) return nullptr;
  std::vector<int32_t> zp = q::zp_list(bz, "b_zero_point");
  return std::make_unique<MatMulToFloatKernel>(dynamic, q::pack_b8(b, zp));
}

std::unique_ptr<Kernel> make_matmul_integer_to_float(const KernelInit& init) {
  return make_to_float(init, false);
}
std::unique_ptr<Kernel> make_dynamic_quantize_matmul(const KernelInit& init) {
  return make_to_float(init, true);
}

}  // namespace

SLIVER_REGISTER_KERNEL("MatMulInteger", make_matmul_integer);
SLIVER_REGISTER_KERNEL("ConvInteger", make_conv_integer);
SLIVER_REGISTER_KERNEL("com.microsoft:MatMulIntegerToFloat", make_matmul_integer_to_float);
SLIVER_REGISTER_KERNEL("com.microsoft:DynamicQuantizeMatMul", make_dynamic_quantize_matmul);

}  // namespace sliver::ops
