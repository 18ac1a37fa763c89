// QLinearConv, bit-exact with onnx.reference: exact int32 sums on the int8 GEMM (q8_conv.h),
// then the reference's requantization (requant.h, onnx_reference order).
//
// Inputs: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B.
// W (and its zero points) must be constant, to be packed once; scales may change per run.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ops/common.h"
#include "ops/q8_conv.h"
#include "ops/quant_util.h"
#include "sliver/kernel.h"

namespace sliver::ops {
namespace {

class QLinearConvKernel final : public Kernel {
 public:
  QLinearConvKernel(q::Q8Conv conv, DType y_type) : conv_(std::move(conv)), y_type_(y_type) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    q::ConvOutputParams op;
    op.quantized = true;
    op.x_scale = q::scalar_f32(need(in, 1), "x_scale");
    const int32_t x_zp = q::scalar_zp(opt(in, 2), "x_zero_point");
    op.w_scale = q::scale_values(need(in, 4), conv_.geometry().oc, "w_scale");
    op.y_scale = q::scalar_f32(need(in, 6), "y_scale");
    const Tensor* yz = opt(in, 7);
    op.y_type = yz ? yz->dtype : (y_type_ == DType::undefined ? x.dtype : y_type_);
    if (!q::is_q8(op.y_type)) fail("QLinearConv: output type ", dtype_name(op.y_type));
    op.y_zero_point = q::scalar_zp(yz, "y_zero_point");
    op.rounding = RequantRounding::onnx_reference;
    conv_.compute(ctx.pool, x, x_zp, op, out[0]);
  }
  std::string describe() const override { return conv_.describe(); }

 private:
  q::Q8Conv conv_;
  DType y_type_;
};

std::unique_ptr<Kernel> make_qlinear_conv(const KernelInit& init) {
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
  std::vector<int32_t> zp = q::zp_list(wz, "w_zero_point");
  std::vector<int32_t> bias;
  if (init.has_input(8)) {
    const Tensor& b = init.const_inputs[8];
    if (b.dtype != DType::i32 || b.numel() != g.oc) return nullptr;
    bias.assign(b.ptr<int32_t>(), b.ptr<int32_t>() + g.oc);
  }
  DType yt = q::q8_dtype(init, 7, 7);
  if (yt == DType::undefined) yt = q::q8_dtype(init, 0, 2);
  return std::make_unique<QLinearConvKernel>(
      q::Q8Conv("QLinearConv", g, w, std::move(zp), std::move(bias)), yt);
}

}  // namespace

SLIVER_REGISTER_KERNEL("QLinearConv", make_qlinear_conv);

}  // namespace sliver::ops
