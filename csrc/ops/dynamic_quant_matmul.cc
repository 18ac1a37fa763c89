// Dynamic quantization's GEMMs with float output, on the exact int8 GEMM (qgemm.h, float32
// output mode):
//
//  com.microsoft:MatMulIntegerToFloat(A, B, a_scale, b_scale, a_zp, b_zp, bias)
//      y = float32(sum (A - a_zp)(B - b_zp)) * float32(a_scale * b_scale[n]) + bias[n]
//  com.microsoft:DynamicQuantizeMatMul(A, B, b_scale, b_zp, bias)
//      the same after quantizing float A to uint8 with DynamicQuantizeLinear's formula
//
// The float order (product of the two scales first, then one multiply, then the bias add,
// each rounded to float32) is the one of the unfused DynamicQuantizeLinear -> MatMulInteger ->
// Cast -> Mul -> Add chain that fuse_dynamic_quant rewrites, so the fusion is bit-exact.
// B, b_scale, b_zp and bias must be constants (weights); A's parameters arrive per run.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "ops/common.h"
#include "ops/q8_matmul.h"
#include "ops/quant_util.h"
#include "sliver/kernel.h"
#include "sliver/qgemm.h"

namespace sliver::ops {
namespace {

// DynamicQuantizeLinear's parameters (the spec's and quantize.cc's order): the range always
// includes 0; a zero range gives scale 1/255; NaN anywhere gives NaN parameters.
void dynamic_qparams(const float* __restrict x, int64_t n, float* scale, int32_t* zp) {
  float lo = 0.f, hi = 0.f;
  int nan = 0;
  for (int64_t i = 0; i < n; ++i) {  // minps/maxps/cmpunordps: vectorizes as written
    const float v = x[i];
    nan |= v != v;
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  if (nan) lo = hi = std::numeric_limits<float>::quiet_NaN();
  const float range = hi == lo ? 1.f : hi - lo;
  *scale = range / 255.f;
  float zpf = 0.f - lo / *scale;
  zpf = std::max(0.f, std::min(255.f, zpf));
  *zp = static_cast<int32_t>(q::round_even_small(zpf));
}

// quantize_one<uint8_t> over a run. Parameters in locals and restrict pointers: a store through
// uint8_t* may alias anything, which would otherwise reload them per element and keep the loop
// scalar.
void quantize_u8(const float* __restrict x, int64_t n, float scale, int32_t zp,
                 uint8_t* __restrict y) {
  const float lo = static_cast<float>(0 - zp), hi = static_cast<float>(255 - zp);
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] / scale;
    v = v > lo ? v : lo;  // NaN -> lo
    v = v < hi ? v : hi;
    y[i] = static_cast<uint8_t>(static_cast<int32_t>(q::round_even_small(v)) + zp);
  }
}

struct FloatOutWeights {
  q::PackedB8 b;
  std::vector<float> b_scale;  // [N]
  std::vector<float> bias;     // [N] or empty
};

// B (2-D), b_scale, b_zp, bias at the given input indices; false when they are not constants
// of the expected types and sizes.
bool read_weights(const KernelInit& init, int ib, int iscale, int izp, int ibias,
                  FloatOutWeights* w) {
  if (!init.is_const(ib) || !init.is_const(iscale)) return false;
  if (!q::const_or_missing(init, izp) || !q::const_or_missing(init, ibias)) return false;
  const Tensor& b = init.const_inputs[ib];
  if (!q::is_q8(b.dtype) || b.rank() != 2) return false;
  const int64_t N = b.shape[1];
  const Tensor& s = init.const_inputs[iscale];
  if (s.dtype != DType::f32 || (s.numel() != 1 && s.numel() != N)) return false;
  const Tensor* z = q::const_input(init, izp);
  if (z && (z->dtype != b.dtype || (z->numel() != 1 && z->numel() != N))) return false;
  const Tensor* bias = q::const_input(init, ibias);
  if (bias && (bias->dtype != DType::f32 || bias->numel() != N)) return false;
  w->b = q::pack_b8(b, z ? q::zp_values(z, z->numel(), "b_zero_point") : std::vector<int32_t>{0});
  w->b_scale = q::scale_values(s, N, "b_scale");
  if (bias) w->bias.assign(bias->ptr<float>(), bias->ptr<float>() + N);
  return true;
}

// y = A * B with float output; A u8/s8 with per-tensor scale and zero point.
void float_out_matmul(ThreadPool* pool, const Tensor& a, float a_scale, int32_t a_zp,
                      const FloatOutWeights& w, Tensor& y) {
  y = Tensor::empty(DType::f32, q::matmul_shape(a.shape, w.b.b_shape));
  q::q8_matmul(pool, a, w.b, a_zp, y, [&](QGemmArgs& g) {
    g.output = QGemmOutput::float32;
    g.a_scale = a_scale;
    g.b_scale = w.b_scale.data();
    g.b_scale_per_column = true;
    g.float_bias = w.bias.empty() ? nullptr : w.bias.data();
  });
}

class MatMulIntegerToFloatKernel final : public Kernel {
 public:
  explicit MatMulIntegerToFloatKernel(FloatOutWeights w) : w_(std::move(w)) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor* az = opt(in, 4);
    if (az && az->numel() != 1)
      fail("MatMulIntegerToFloat: a_zero_point must be a scalar here, got ", shape_str(az->shape));
    const Tensor& as = need(in, 2);
    if (as.numel() != 1)
      fail("MatMulIntegerToFloat: a_scale must be a scalar here, got ", shape_str(as.shape));
    float_out_matmul(ctx.pool, need(in, 0), q::scalar_f32(as, "a_scale"),
                     q::scalar_zp(az, "a_zero_point"), w_, out[0]);
  }
  std::string describe() const override { return "native MatMulIntegerToFloat (q8 gemm)"; }

 private:
  FloatOutWeights w_;
};

std::unique_ptr<Kernel> make_matmul_integer_to_float(const KernelInit& init) {
  if (init.num_inputs() < 4) return nullptr;
  const DType at = q::q8_dtype(init, 0, 4);
  if (at != DType::undefined && !q::is_q8(at)) return nullptr;
  FloatOutWeights w;
  if (!read_weights(init, 1, 3, 5, 6, &w)) return nullptr;
  return std::make_unique<MatMulIntegerToFloatKernel>(std::move(w));
}

class DynamicQuantizeMatMulKernel final : public Kernel {
 public:
  explicit DynamicQuantizeMatMulKernel(FloatOutWeights w) : w_(std::move(w)) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    if (x.dtype != DType::f32)
      fail("DynamicQuantizeMatMul: A must be float32, got ", dtype_name(x.dtype));
    const int64_t n = x.numel();
    float scale = 1.f;
    int32_t zp = 0;
    dynamic_qparams(x.ptr<float>(), n, &scale, &zp);
    Tensor xq = Tensor::empty(DType::u8, x.shape);
    const float* px = x.ptr<float>();
    uint8_t* pq = xq.ptr<uint8_t>();
    parallel_for(ctx.pool, n, 1.0, [&](int64_t b, int64_t e) {
      quantize_u8(px + b, e - b, scale, zp, pq + b);
    });
    float_out_matmul(ctx.pool, xq, scale, zp, w_, out[0]);
  }
  std::string describe() const override {
    return "native DynamicQuantizeMatMul (quantize + q8 gemm)";
  }

 private:
  FloatOutWeights w_;
};

std::unique_ptr<Kernel> make_dynamic_quantize_matmul(const KernelInit& init) {
  if (init.num_inputs() < 3) return nullptr;
  const DType at = in_dtype(init, 0);
  if (at != DType::undefined && at != DType::f32) return nullptr;
  FloatOutWeights w;
  if (!read_weights(init, 1, 2, 3, 4, &w)) return nullptr;
  return std::make_unique<DynamicQuantizeMatMulKernel>(std::move(w));
}

}  // namespace

SLIVER_REGISTER_KERNEL("com.microsoft:MatMulIntegerToFloat", make_matmul_integer_to_float);
SLIVER_REGISTER_KERNEL("com.microsoft:DynamicQuantizeMatMul", make_dynamic_quantize_matmul);

}  // namespace sliver::ops
