// The 8-bit ops the QDQ passes write (python/sliver/ops/qfused.py has their numpy twins):
//
//  sliver:QLinearConv   QLinearConv + activation_min/activation_max: a Relu/Clip that sat
//                       between the float Conv and its Q, folded into a clamp of the codes;
//                       channels_last=1: X and Y are NHWC (q8_conv_nhwc.h, layout pass qdq_nhwc);
//                       with nchw_input=1 too, X stays NCHW (the region's first conv).
//  sliver:QLinearMatMul QLinearMatMul + int32 bias + transB + the same clamp; B constant
//                       (packed once, Gemm/MatMul weights) or an activation (packed per run,
//                       attention's Q x K^T and P x V).
//  sliver:QLinearLookup y = table[byte(x)]: any elementwise function between a DQ and a Q
//                       is a function of one code (qdq_lookup builds the table).
//  sliver:QLinearPairLookup y = table[byte(a) * 256 + byte(b)] with numpy broadcasting: a
//                       binary elementwise function of two codes (qdq_binary builds the table,
//                       qdq_fold_lookups composes tables into it). Both lookups gather with
//                       ukernels/q8_vbinary/q8_vlut.h (AVX2: byte shuffles / vpgatherdd).
//  sliver:QLinearBinary Q(DQ(a) op DQ(b)) for op = Add/Sub/Mul/Div/Max/Min in the float path's
//                       own float32 order (ukernels/q8_vbinary), + the activation clamp: exact
//                       like a table, and several times faster (32 codes per AVX2 step
//                       against a gather per code from 64 KiB).
//
// All requantize in onnx.reference's order (requant.h), on the exact int32 sums of qgemm.h.
//
// The clamp rides in the requantization: ConvOutputParams::act_min/act_max for the NCHW conv,
// QGemmArgs::qmin/qmax for the GEMMs.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ops/common.h"
#include "ops/q8_conv.h"
#include "ops/q8_conv_nhwc.h"
#include "ops/q8_matmul.h"
#include "ops/quant_util.h"
#include "sliver/broadcast.h"
#include "sliver/kernel.h"
#include "sliver/qgemm.h"
#include "ukernels/q8_vbinary/q8_vbinary.h"
#include "ukernels/q8_vbinary/q8_vlut.h"

namespace sliver::ops {
namespace {

// [lo, hi] from activation_min/activation_max, within the range of code type t.
struct CodeClamp {
  int32_t lo = 0, hi = 255;
};

bool read_clamp(const Attrs& a, DType t, CodeClamp* c) {
  const int32_t qmin = t == DType::u8 ? 0 : -128, qmax = qmin + 255;
  c->lo = static_cast<int32_t>(a.get_int("activation_min", qmin));
  c->hi = static_cast<int32_t>(a.get_int("activation_max", qmax));
  if (c->lo < qmin || c->hi > qmax || c->lo > c->hi) return false;
  return true;
}

// The output code type: y_zero_point's constant type, else the statically known output type.
DType output_q8_type(const KernelInit& init, int zp_index) {
  DType t = q::q8_dtype(init, zp_index, zp_index);
  if (!q::is_q8(t) && !init.output_dtypes.empty()) t = init.output_dtypes[0];
  return t;
}

// ---- sliver:QLinearConv ----

class FusedQLinearConvKernel final : public Kernel {
 public:
  FusedQLinearConvKernel(q::Q8Conv conv, DType y_type, CodeClamp clamp)
      : conv_(std::move(conv)), y_type_(y_type), clamp_(clamp) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    q::ConvOutputParams op;
    op.quantized = true;
    op.x_scale = q::scalar_f32(need(in, 1), "x_scale");
    const int32_t x_zp = q::scalar_zp(opt(in, 2), "x_zero_point");
    op.w_scale = q::scale_values(need(in, 4), conv_.geometry().oc, "w_scale");
    op.y_scale = q::scalar_f32(need(in, 6), "y_scale");
    op.y_type = y_type_;
    op.y_zero_point = q::scalar_zp(opt(in, 7), "y_zero_point");
    op.rounding = RequantRounding::onnx_reference;
    op.act_min = clamp_.lo;
    op.act_max = clamp_.hi;
    conv_.compute(ctx.pool, need(in, 0), x_zp, op, out[0]);
  }
  std::string describe() const override { return conv_.describe(); }

 private:
  q::Q8Conv conv_;
  DType y_type_;
  CodeClamp clamp_;
};

// channels_last=1: NHWC in and out, the clamp inside the GEMM epilogue.
class NhwcQLinearConvKernel final : public Kernel {
 public:
  NhwcQLinearConvKernel(q::NhwcQ8Conv conv, DType y_type, CodeClamp clamp)
      : conv_(std::move(conv)), y_type_(y_type), clamp_(clamp) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    q::ConvOutputParams op;
    op.quantized = true;
    op.x_scale = q::scalar_f32(need(in, 1), "x_scale");
    const int32_t x_zp = q::scalar_zp(opt(in, 2), "x_zero_point");
    op.w_scale = q::scale_values(need(in, 4), conv_.geometry().oc, "w_scale");
    op.y_scale = q::scalar_f32(need(in, 6), "y_scale");
    op.y_type = y_type_;
    op.y_zero_point = q::scalar_zp(opt(in, 7), "y_zero_point");
    conv_.compute(ctx.pool, need(in, 0), x_zp, op, clamp_.lo, clamp_.hi, out[0]);
  }
  int64_t weight_bytes() const override { return conv_.weight_bytes(); }
  std::string describe() const override { return conv_.describe(); }

 private:
  q::NhwcQ8Conv conv_;
  DType y_type_;
  CodeClamp clamp_;
};

std::unique_ptr<Kernel> make_fused_qlinear_conv(const KernelInit& init) {
  if (init.num_inputs() < 8 || !init.is_const(3) || !q::const_or_missing(init, 5)) return nullptr;
  if (init.has_input(8) && !init.is_const(8)) return nullptr;
  const Tensor& w = init.const_inputs[3];
  if (!q::is_q8(w.dtype)) return nullptr;
  q::ConvGeometry g;
  if (!q::parse_conv(init.attrs, w.shape, &g)) return nullptr;
  for (int i : {1, 2, 6, 7})  // per-tensor activation parameters only
    if (init.is_const(i) && init.const_inputs[i].numel() != 1) return nullptr;
  const Tensor* wz = q::const_input(init, 5);
  if (wz && (wz->dtype != w.dtype || (wz->numel() != 1 && wz->numel() != g.oc))) return nullptr;
  const DType yt = output_q8_type(init, 7);
  CodeClamp clamp;
  if (!q::is_q8(yt) || !read_clamp(init.attrs, yt, &clamp)) return nullptr;
  std::vector<int32_t> zp =
      wz ? q::zp_values(wz, wz->numel(), "w_zero_point") : std::vector<int32_t>{0};
  std::vector<int32_t> bias;
  if (init.has_input(8)) {
    const Tensor& b = init.const_inputs[8];
    if (b.dtype != DType::i32 || b.numel() != g.oc) return nullptr;
    bias.assign(b.ptr<int32_t>(), b.ptr<int32_t>() + g.oc);
  }
  if (init.attrs.get_int("channels_last", 0) != 0) {
    if (!q::NhwcQ8Conv::supports(g)) return nullptr;
    const bool nchw_input = init.attrs.get_int("nchw_input", 0) != 0;
    return std::make_unique<NhwcQLinearConvKernel>(
        q::NhwcQ8Conv(g, w, zp, std::move(bias), nchw_input), yt, clamp);
  }
  return std::make_unique<FusedQLinearConvKernel>(
      q::Q8Conv("sliver:QLinearConv", g, w, std::move(zp), std::move(bias)), yt, clamp);
}

// ---- sliver:QLinearMatMul ----

class FusedQLinearMatMulKernel final : public Kernel {
 public:
  // b: packed constant B, or null to pack B per run.
  FusedQLinearMatMulKernel(std::shared_ptr<q::PackedB8> b, bool trans_b, DType y_type,
                           CodeClamp clamp, std::vector<int32_t> bias)
      : b_(std::move(b)), trans_b_(trans_b), y_type_(y_type), clamp_(clamp),
        bias_(std::move(bias)) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& a = need(in, 0);
    std::shared_ptr<q::PackedB8> b = b_;
    if (!b) {
      const Tensor& bt = need(in, 3);
      const Tensor* bz = opt(in, 5);
      if (bz && bz->numel() != 1)
        fail("sliver:QLinearMatMul: a per-column zero point needs a constant B");
      b = std::make_shared<q::PackedB8>(q::pack_b8(
          bt, bz ? q::zp_values(bz, 1, "b_zero_point") : std::vector<int32_t>{0}, false,
          /*per_run=*/true));
    }
    const int64_t N = b->mats[0]->N, K = b->mats[0]->K;
    Shape ys;
    if (trans_b_) {  // 2-D B only: every leading axis of A is more rows
      if (a.rank() < 1 || a.shape.back() != K)
        fail("sliver:QLinearMatMul: A ", shape_str(a.shape), " does not match K=", K);
      ys = a.shape;
      ys.back() = N;
    } else {
      ys = q::matmul_shape(a.shape, b->b_shape);
    }
    const float a_scale = q::scalar_f32(need(in, 1), "a_scale");
    const int32_t a_zp = q::scalar_zp(opt(in, 2), "a_zero_point");
    const std::vector<float> b_scale = q::scale_values(need(in, 4), N, "b_scale");
    const float y_scale = q::scalar_f32(need(in, 6), "y_scale");
    const int32_t y_zp = q::scalar_zp(opt(in, 7), "y_zero_point");
    if (!bias_.empty() && static_cast<int64_t>(bias_.size()) != N)
      fail("sliver:QLinearMatMul: bias has ", bias_.size(), " values, N is ", N);
    out[0] = Tensor::empty(y_type_, ys);
    q::q8_matmul(ctx.pool, a, *b, a_zp, out[0], [&](QGemmArgs& g) {
      g.output = QGemmOutput::quantized;
      g.bias = bias_.empty() ? nullptr : bias_.data();
      g.a_scale = a_scale;
      g.b_scale = b_scale.data();
      g.b_scale_per_column = true;
      g.y_scale = y_scale;
      g.y_zero_point = y_zp;
      g.y_type = y_type_;
      g.qmin = clamp_.lo;
      g.qmax = clamp_.hi;
      g.rounding = RequantRounding::onnx_reference;
    });
  }
  int64_t weight_bytes() const override { return b_ ? packed_bytes(b_->mats) : 0; }
  std::string describe() const override {
    return b_ ? "native sliver:QLinearMatMul (q8 gemm)"
              : "native sliver:QLinearMatMul (q8 gemm, B packed per run)";
  }

 private:
  std::shared_ptr<q::PackedB8> b_;
  bool trans_b_;
  DType y_type_;
  CodeClamp clamp_;
  std::vector<int32_t> bias_;
};

std::unique_ptr<Kernel> make_fused_qlinear_matmul(const KernelInit& init) {
  if (init.num_inputs() < 7) return nullptr;
  const bool trans_b = init.attrs.get_int("transB", 0) != 0;
  const DType at = q::q8_dtype(init, 0, 2);
  if (at != DType::undefined && !q::is_q8(at)) return nullptr;
  for (int i : {1, 2, 6, 7})  // per-tensor a and y parameters
    if (init.is_const(i) && init.const_inputs[i].numel() != 1) return nullptr;
  const DType yt = output_q8_type(init, 7);
  CodeClamp clamp;
  if (!q::is_q8(yt) || !read_clamp(init.attrs, yt, &clamp)) return nullptr;
  std::vector<int32_t> bias;
  if (init.has_input(8)) {
    if (!init.is_const(8) || init.const_inputs[8].dtype != DType::i32) return nullptr;
    const Tensor& c = init.const_inputs[8];
    bias.assign(c.ptr<int32_t>(), c.ptr<int32_t>() + c.numel());
  }
  std::shared_ptr<q::PackedB8> packed;
  if (init.is_const(3)) {
    const Tensor& b = init.const_inputs[3];
    if (!q::is_q8(b.dtype) || b.rank() < 2 || (trans_b && b.rank() != 2)) return nullptr;
    if (!q::const_or_missing(init, 5)) return nullptr;
    const int64_t N = trans_b ? b.shape[0] : b.shape.back();
    const Tensor* bz = q::const_input(init, 5);
    if (bz && (bz->dtype != b.dtype || (bz->numel() != 1 && bz->numel() != N))) return nullptr;
    if (!bias.empty() && static_cast<int64_t>(bias.size()) != N) return nullptr;
    std::vector<int32_t> zp =
        bz ? q::zp_values(bz, bz->numel(), "b_zero_point") : std::vector<int32_t>{0};
    packed = std::make_shared<q::PackedB8>(q::pack_b8(b, zp, trans_b));
  } else if (trans_b) {
    return nullptr;
  }
  return std::make_unique<FusedQLinearMatMulKernel>(std::move(packed), trans_b, yt, clamp,
                                                    std::move(bias));
}

// ---- sliver:QLinearLookup, sliver:QLinearPairLookup ----

class LookupKernel final : public Kernel {
 public:
  LookupKernel(DType y_type, std::vector<uint8_t> table)
      : y_type_(y_type), table_(std::move(table)), fn_(q8_vlut_kernels().lut1) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    if (!q::is_q8(x.dtype))
      fail("sliver:QLinearLookup: input must be uint8 or int8, got ", dtype_name(x.dtype));
    out[0] = Tensor::empty(y_type_, x.shape);
    const uint8_t* px = static_cast<const uint8_t*>(x.data);
    uint8_t* py = static_cast<uint8_t*>(out[0].data);
    const uint8_t* t = table_.data();
    const Q8VLut1Fn fn = fn_;
    parallel_for(ctx.pool, x.numel(), 1.0, [&](int64_t b, int64_t e) {
      if (e > b) fn(t, e - b, px + b, py + b);
    });
  }
  std::string describe() const override { return "native sliver:QLinearLookup (table)"; }

 private:
  DType y_type_;
  std::vector<uint8_t> table_;
  Q8VLut1Fn fn_;
};

std::unique_ptr<Kernel> make_lookup(const KernelInit& init) {
  if (init.num_inputs() != 2 || !init.is_const(1)) return nullptr;
  const Tensor& t = init.const_inputs[1];
  if (!q::is_q8(t.dtype) || t.numel() != 256) return nullptr;
  const DType xt = in_dtype(init, 0);
  if (xt != DType::undefined && !q::is_q8(xt)) return nullptr;
  const uint8_t* p = static_cast<const uint8_t*>(t.data);
  return std::make_unique<LookupKernel>(t.dtype, std::vector<uint8_t>(p, p + 256));
}


// The table is kept (q8_vlut.h says why), padded for the kernel's 32-bit gathers.
class PairLookupKernel final : public Kernel {
 public:
  PairLookupKernel(DType y_type, const uint8_t* table)
      : y_type_(y_type), table_(table, table + 65536), fn_(q8_vlut_kernels().lut2) {
    table_.resize(65536 + kQ8VLut2TablePad, 0);
  }

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& a = need(in, 0);
    const Tensor& b = need(in, 1);
    if (!q::is_q8(a.dtype) || !q::is_q8(b.dtype))
      fail("sliver:QLinearPairLookup: inputs must be uint8/int8, got ", dtype_name(a.dtype),
           shape_str(a.shape), " and ", dtype_name(b.dtype), shape_str(b.shape));
    const Shape shape = broadcast_shapes({a.shape, b.shape});
    out[0] = Tensor::empty(y_type_, shape);
    if (out[0].numel() == 0) return;
    const BroadcastLoop L = plan_broadcast(shape, {a.shape, b.shape});
    const uint8_t* pa = static_cast<const uint8_t*>(a.data);
    const uint8_t* pb = static_cast<const uint8_t*>(b.data);
    uint8_t* py = static_cast<uint8_t*>(out[0].data);
    const uint8_t* t = table_.data();
    const int64_t sa = L.inner_stride(0), sb = L.inner_stride(1);
    const Q8VLut2Fn fn = fn_;
    broadcast_for<2>(L, ctx.pool, 1.0, [&](int64_t n, int64_t y_off, const int64_t* off) {
      fn(t, n, pa + off[0], sa, pb + off[1], sb, py + y_off);
    });
  }
  std::string describe() const override { return "native sliver:QLinearPairLookup (table)"; }

 private:
  DType y_type_;
  std::vector<uint8_t> table_;
  Q8VLut2Fn fn_;
};

std::unique_ptr<Kernel> make_pair_lookup(const KernelInit& init) {
  if (init.num_inputs() != 3 || !init.is_const(2)) return nullptr;
  const Tensor& t = init.const_inputs[2];
  if (!q::is_q8(t.dtype) || t.numel() != 65536) return nullptr;
  for (int i : {0, 1})
    if (in_dtype(init, i) != DType::undefined && !q::is_q8(in_dtype(init, i))) return nullptr;
  return std::make_unique<PairLookupKernel>(t.dtype, static_cast<const uint8_t*>(t.data));
}

// ---- sliver:QLinearBinary ----

class BinaryKernel final : public Kernel {
 public:
  explicit BinaryKernel(Q8BinaryParams p) : p_(p), fn_(q8_vbinary_kernel().fn) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& a = need(in, 0);
    const Tensor& b = need(in, 3);
    const DType at = p_.a_signed ? DType::i8 : DType::u8, bt = p_.b_signed ? DType::i8 : DType::u8;
    if (a.dtype != at || b.dtype != bt)
      fail("sliver:QLinearBinary: inputs are ", dtype_name(a.dtype), " and ", dtype_name(b.dtype),
           ", expected ", dtype_name(at), " and ", dtype_name(bt));
    const Shape shape = broadcast_shapes({a.shape, b.shape});
    out[0] = Tensor::empty(p_.y_signed ? DType::i8 : DType::u8, shape);
    if (out[0].numel() == 0) return;
    const BroadcastLoop L = plan_broadcast(shape, {a.shape, b.shape});
    const uint8_t* pa = static_cast<const uint8_t*>(a.data);
    const uint8_t* pb = static_cast<const uint8_t*>(b.data);
    uint8_t* py = static_cast<uint8_t*>(out[0].data);
    const int64_t sa = L.inner_stride(0), sb = L.inner_stride(1);
    const Q8BinaryParams p = p_;
    const Q8VBinaryFn fn = fn_;
    broadcast_for<2>(L, ctx.pool, 1.0, [&](int64_t n, int64_t y_off, const int64_t* off) {
      fn(p, n, pa + off[0], sa, pb + off[1], sb, py + y_off);
    });
  }
  std::string describe() const override { return "native sliver:QLinearBinary (float path)"; }

 private:
  Q8BinaryParams p_;
  Q8VBinaryFn fn_;
};

std::unique_ptr<Kernel> make_binary(const KernelInit& init) {
  if (init.num_inputs() != 8) return nullptr;
  for (int i : {1, 2, 4, 5, 6, 7})  // per-tensor constant parameters
    if (!init.is_const(i) || init.const_inputs[i].numel() != 1) return nullptr;
  Q8BinaryParams p;
  const std::string op = init.attrs.get_string("op", "");
  const char* names[] = {"Add", "Sub", "Mul", "Div", "Max", "Min"};
  int k = 0;
  while (k < 6 && op != names[k]) ++k;
  if (k == 6) return nullptr;
  p.op = static_cast<Q8BinaryOp>(k);
  const DType at = init.const_inputs[2].dtype, bt = init.const_inputs[5].dtype;
  const DType yt = init.const_inputs[7].dtype;
  if (!q::is_q8(at) || !q::is_q8(bt) || !q::is_q8(yt)) return nullptr;
  p.a_signed = at == DType::i8;
  p.b_signed = bt == DType::i8;
  p.y_signed = yt == DType::i8;
  p.a_scale = q::scalar_f32(init.const_inputs[1], "a_scale");
  p.b_scale = q::scalar_f32(init.const_inputs[4], "b_scale");
  p.y_scale = q::scalar_f32(init.const_inputs[6], "y_scale");
  p.a_zero_point = q::scalar_zp(&init.const_inputs[2], "a_zero_point");
  p.b_zero_point = q::scalar_zp(&init.const_inputs[5], "b_zero_point");
  p.y_zero_point = q::scalar_zp(&init.const_inputs[7], "y_zero_point");
  CodeClamp clamp;
  if (!read_clamp(init.attrs, yt, &clamp)) return nullptr;
  p.lo = clamp.lo;
  p.hi = clamp.hi;
  return std::make_unique<BinaryKernel>(p);
}

}  // namespace

SLIVER_REGISTER_KERNEL("sliver:QLinearBinary", make_binary);
SLIVER_REGISTER_KERNEL("sliver:QLinearPairLookup", make_pair_lookup);
SLIVER_REGISTER_KERNEL("sliver:QLinearConv", make_fused_qlinear_conv);
SLIVER_REGISTER_KERNEL("sliver:QLinearMatMul", make_fused_qlinear_matmul);
SLIVER_REGISTER_KERNEL("sliver:QLinearLookup", make_lookup);

}  // namespace sliver::ops
