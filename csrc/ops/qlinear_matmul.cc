// QLinearMatMul (bit-exact with onnx.reference) and com.microsoft QGemm (bit-exact with
// onnxruntime) on the exact int8 GEMM.
//
// The two differ only in the float step after the exact int32 sums (requant.h): the ONNX op
// follows the reference's float64 product, QGemm follows MLAS's float32 one, and QGemm folds its
// alpha into the A scale first ((alpha * a_scale) * b_scale / y_scale, onnxruntime's order).
#include <cstdint>
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

// Inputs: a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point. B is packed
// once when it is a constant (weights); an activation B (attention's Q x K^T and P x V) is packed
// per run, batch by batch, which costs one pass over B next to the GEMM's K passes.
class QLinearMatMulKernel final : public Kernel {
 public:
  QLinearMatMulKernel(std::shared_ptr<const q::PackedB8> b, DType y_type)
      : b_(std::move(b)), y_type_(y_type) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& a = need(in, 0);
    for (int i : {1, 2, 6, 7})
      if (opt(in, i) && in[i]->numel() != 1)
        fail("QLinearMatMul: ", kNames[i], " must hold one value here, got shape ",
             shape_str(in[i]->shape));
    const float a_scale = q::scalar_f32(need(in, 1), "a_scale");
    const int32_t a_zp = q::scalar_zp(opt(in, 2), "a_zero_point");
    std::shared_ptr<const q::PackedB8> b = b_ ? b_ : pack_b(need(in, 3), opt(in, 5));
    const int64_t N = b->mats[0]->N;
    const std::vector<float> b_scale = q::scale_values(need(in, 4), N, "b_scale");
    const float y_scale = q::scalar_f32(need(in, 6), "y_scale");
    const Tensor* yzt = opt(in, 7);
    const DType yt = yzt ? yzt->dtype : y_type_;
    if (!q::is_q8(yt)) fail("QLinearMatMul: output type ", dtype_name(yt), " not handled");
    const int32_t y_zp = q::scalar_zp(yzt, "y_zero_point");
    out[0] = Tensor::empty(yt, q::matmul_shape(a.shape, b->b_shape));
    q::q8_matmul(ctx.pool, a, *b, a_zp, out[0], [&](QGemmArgs& g) {
      g.output = QGemmOutput::quantized;
      g.a_scale = a_scale;
      g.b_scale = b_scale.data();
      g.b_scale_per_column = true;
      g.y_scale = y_scale;
      g.y_zero_point = y_zp;
      g.y_type = yt;
      g.qmin = yt == DType::u8 ? 0 : -128;
      g.qmax = g.qmin + 255;
      g.rounding = RequantRounding::onnx_reference;
    });
  }
  int64_t weight_bytes() const override { return b_ ? packed_bytes(b_->mats) : 0; }
  std::string describe() const override {
    return b_ ? "native QLinearMatMul (q8 gemm)"
              : "native QLinearMatMul (q8 gemm, B packed per run)";
  }

 private:
  static constexpr const char* kNames[] = {"a",       "a_scale", "a_zero_point", "b",
                                           "b_scale", "b_zero_point", "y_scale", "y_zero_point"};

  // B's zero point is one value or one per column (of every batch matrix).
  static std::shared_ptr<const q::PackedB8> pack_b(const Tensor& b, const Tensor* bz) {
    if (!q::is_q8(b.dtype))
      fail("QLinearMatMul: b must be uint8 or int8, got ", dtype_name(b.dtype));
    if (bz && bz->dtype != b.dtype)
      fail("QLinearMatMul: b_zero_point is ", dtype_name(bz->dtype), ", b is ",
           dtype_name(b.dtype));
    const int64_t N = b.rank() >= 2 ? b.shape.back() : 1;
    if (bz && bz->numel() != 1 && (bz->numel() != N || b.rank() < 2))
      fail("QLinearMatMul: b_zero_point ", shape_str(bz->shape), " is neither per tensor nor per ",
           "column of b ", shape_str(b.shape));
    return std::make_shared<const q::PackedB8>(
        q::pack_b8(b, q::zp_list(bz, "b_zero_point"), false, /*per_run=*/true));
  }

  std::shared_ptr<const q::PackedB8> b_;  // nullptr: B is packed per run
  DType y_type_;
};

std::unique_ptr<Kernel> make_qlinear_matmul(const KernelInit& init) {
  if (init.num_inputs() < 7) return nullptr;
  const DType at = q::q8_dtype(init, 0, 2);
  if (at != DType::undefined && !q::is_q8(at)) return nullptr;
  for (int i : {1, 4, 6})  // float16 / bfloat16 scales (opset 21): reference fallback
    if (in_dtype(init, i) != DType::undefined && in_dtype(init, i) != DType::f32) return nullptr;
  // Per-row a scales / zero points are not an 8-bit GEMM epilogue: reference fallback.
  for (int i : {1, 2, 6, 7})
    if (init.is_const(i) && init.const_inputs[i].numel() != 1) return nullptr;
  DType yt = q::q8_dtype(init, 7, 7);
  if (yt != DType::undefined && !q::is_q8(yt)) return nullptr;
  if (yt == DType::undefined) yt = at == DType::undefined ? DType::u8 : at;
  if (!init.is_const(3) || !q::const_or_missing(init, 5)) {
    const DType bt = q::q8_dtype(init, 3, 5);
    if (bt != DType::undefined && !q::is_q8(bt)) return nullptr;
    return std::make_unique<QLinearMatMulKernel>(nullptr, yt);
  }
  const Tensor& b = init.const_inputs[3];
  if (!q::is_q8(b.dtype) || b.rank() < 2) return nullptr;
  const int64_t N = b.shape.back();
  const Tensor* bz = q::const_input(init, 5);
  if (bz && bz->numel() != 1 && bz->numel() != N) return nullptr;
  if (bz && bz->dtype != b.dtype) return nullptr;
  std::vector<int32_t> zp = q::zp_list(bz, "b_zero_point");
  return std::make_unique<QLinearMatMulKernel>(
      std::make_shared<const q::PackedB8>(q::pack_b8(b, zp)), yt);
}

// com.microsoft QGemm: A, a_scale, a_zero_point, B, b_scale, b_zero_point, C (int32 bias),
// y_scale, y_zero_point; attributes alpha, transA, transB. Output u8/s8 when y_zero_point is
// given, else float32 (scaled by 1 / y_scale if y_scale is given).
class QGemmKernel final : public Kernel {
 public:
  QGemmKernel(q::PackedB8 b, float alpha, bool trans_a)
      : b_(std::move(b)), alpha_(alpha), trans_a_(trans_a) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& a_in = need(in, 0);
    if (a_in.rank() != 2) fail("QGemm: A must be 2-D, got ", shape_str(a_in.shape));
    Tensor a = trans_a_ ? transpose8(a_in) : a_in;
    const int64_t M = a.shape[0], N = b_.mats[0]->N;
    if (a.shape[1] != b_.mats[0]->K)
      fail("QGemm: A ", shape_str(a_in.shape), " does not match K=", b_.mats[0]->K);
    const float a_scale = alpha_ * q::scalar_f32(need(in, 1), "a_scale");
    const int32_t a_zp = q::scalar_zp(opt(in, 2), "a_zero_point");
    const std::vector<float> b_scale = q::scale_values(need(in, 4), N, "b_scale");
    const Tensor* c = opt(in, 6);
    const Tensor* ys = opt(in, 7);
    const Tensor* yz = opt(in, 8);
    std::vector<int32_t> bias;
    if (c) bias = bias_rows(*c, M, N);
    const bool quantized = yz != nullptr;
    const DType yt = quantized ? yz->dtype : DType::f32;
    if (quantized && !q::is_q8(yt)) fail("QGemm: y_zero_point type ", dtype_name(yt));
    out[0] = Tensor::empty(yt, {M, N});
    if (M == 0 || N == 0) return;
    const float y_scale = ys ? q::scalar_f32(*ys, "y_scale") : 1.f;
    std::vector<float> scales(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n)
      scales[n] = ys ? a_scale * b_scale[n] / y_scale : a_scale * b_scale[n];
    const bool bias_per_row = c && bias.size() != static_cast<size_t>(N);
    const uint8_t* pa = static_cast<const uint8_t*>(a.data);
    uint8_t* pc = static_cast<uint8_t*>(out[0].data);
    const size_t ce = dtype_size(yt);
    // A bias that varies per row (C of shape [M, 1] or [M, N]) needs a GEMM call per row.
    const int64_t step = bias_per_row ? 1 : M;
    for (int64_t m0 = 0; m0 < M; m0 += step) {
      QGemmArgs g;
      g.M = step;
      g.a = pa + m0 * a.shape[1];
      g.a_type = a.dtype;
      g.lda = a.shape[1];
      g.a_zero_point = a_zp;
      g.c = pc + m0 * N * ce;
      g.ldc = N;
      g.bias = c ? bias.data() + (bias_per_row ? m0 * N : 0) : nullptr;
      if (quantized) {
        g.output = QGemmOutput::quantized;
        g.a_scale = a_scale;
        g.b_scale = b_scale.data();
        g.b_scale_per_column = true;
        g.y_scale = y_scale;
        g.y_zero_point = q::scalar_zp(yz, "y_zero_point");
        g.y_type = yt;
        g.qmin = yt == DType::u8 ? 0 : -128;
        g.qmax = g.qmin + 255;
        g.rounding = RequantRounding::onnxruntime;
      } else {
        // Float output: acc * scales[n]; qgemm multiplies by a_scale * b_scale[n], and
        // 1 * scales[n] is exact, so onnxruntime's combined scale passes through unchanged.
        g.output = QGemmOutput::float32;
        g.a_scale = 1.f;
        g.b_scale = scales.data();
        g.b_scale_per_column = true;
      }
      qgemm(g, *b_.mats[0], ctx.pool);
    }
  }
  int64_t weight_bytes() const override { return packed_bytes(b_.mats); }
  std::string describe() const override { return "native QGemm (q8 gemm)"; }

 private:
  static Tensor transpose8(const Tensor& a) {
    Tensor t = Tensor::empty(a.dtype, {a.shape[1], a.shape[0]});
    const uint8_t* s = static_cast<const uint8_t*>(a.data);
    uint8_t* d = static_cast<uint8_t*>(t.data);
    for (int64_t i = 0; i < a.shape[0]; ++i)
      for (int64_t j = 0; j < a.shape[1]; ++j) d[j * a.shape[0] + i] = s[i * a.shape[1] + j];
    return t;
  }
  // C broadcast to [N] (per column) or [M * N] (when it varies per row).
  static std::vector<int32_t> bias_rows(const Tensor& c, int64_t M, int64_t N) {
    if (c.dtype != DType::i32) fail("QGemm: C must be int32, got ", dtype_name(c.dtype));
    const int32_t* p = c.ptr<int32_t>();
    const int64_t n = c.numel();
    if (n == 1) return std::vector<int32_t>(static_cast<size_t>(N), p[0]);
    if (n == N && (c.rank() == 1 || c.shape[0] == 1)) return std::vector<int32_t>(p, p + N);
    std::vector<int32_t> v(static_cast<size_t>(M * N));
    if (c.rank() == 2 && c.shape[0] == M && c.shape[1] == 1) {
      for (int64_t m = 0; m < M; ++m)
        for (int64_t j = 0; j < N; ++j) v[m * N + j] = p[m];
      return v;
    }
    if (c.rank() == 2 && c.shape[0] == M && c.shape[1] == N)
      return std::vector<int32_t>(p, p + M * N);
    fail("QGemm: C ", shape_str(c.shape), " does not broadcast to [", M, ", ", N, "]");
  }

  q::PackedB8 b_;
  float alpha_;
  bool trans_a_;
};

std::unique_ptr<Kernel> make_qgemm(const KernelInit& init) {
  if (init.num_inputs() < 6 || !init.is_const(3) || !init.is_const(5)) return nullptr;
  const Tensor& b = init.const_inputs[3];
  if (!q::is_q8(b.dtype) || b.rank() != 2) return nullptr;
  const bool trans_b = init.attrs.get_int("transB", 0) != 0;
  const int64_t N = trans_b ? b.shape[0] : b.shape[1];
  const Tensor& bz = init.const_inputs[5];
  if (bz.dtype != b.dtype || (bz.numel() != 1 && bz.numel() != N)) return nullptr;
  if (init.is_const(4) && init.const_inputs[4].numel() != 1 && init.const_inputs[4].numel() != N)
    return nullptr;
  const auto zp = q::zp_values(&bz, bz.numel(), "b_zero_point");
  return std::make_unique<QGemmKernel>(q::pack_b8(b, zp, trans_b),
                                       static_cast<float>(init.attrs.get_float("alpha", 1.0)),
                                       init.attrs.get_int("transA", 0) != 0);
}

}  // namespace

SLIVER_REGISTER_KERNEL("QLinearMatMul", make_qlinear_matmul);
SLIVER_REGISTER_KERNEL("com.microsoft:QGemm", make_qgemm);

}  // namespace sliver::ops
