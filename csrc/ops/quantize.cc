// QuantizeLinear, DequantizeLinear (per tensor and per axis, 8-bit and int32) and
// DynamicQuantizeLinear, bit-exact with onnx.reference.
//
// Blocked quantization, 4-bit, 16-bit and float8 types are declined here and run through the
// reference fallback; they are rare and onnx's implementation is the spec.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/common.h"
#include "ops/dynamic_quant.h"
#include "ops/quant_util.h"
#include "sliver/kernel.h"

namespace sliver::ops {
namespace {

// Per-axis layout of an operand: [outer, channels, inner]; channels == 1 for per-tensor.
struct AxisSplit {
  int64_t outer = 1, channels = 1, inner = 1;
};

AxisSplit split_for(const Shape& shape, const Tensor& scale, int64_t axis_attr, const char* op) {
  AxisSplit s;
  const int64_t n = shape_numel(shape);
  if (scale.numel() == 1 && scale.rank() <= 1) {
    s.inner = n;
    return s;
  }
  if (scale.rank() != 1) fail(op, ": scale must be a scalar or 1-D, got ", shape_str(scale.shape));
  const int64_t rank = static_cast<int64_t>(shape.size());
  const int64_t axis = normalize_axis(axis_attr, rank);
  if (shape[axis] != scale.numel())
    fail(op, ": scale has ", scale.numel(), " values but axis ", axis, " of input ",
         shape_str(shape), " has ", shape[axis]);
  for (int64_t i = 0; i < axis; ++i) s.outer *= shape[i];
  s.channels = shape[axis];
  for (int64_t i = axis + 1; i < rank; ++i) s.inner *= shape[i];
  return s;
}

// Runs fn(begin, end) over [0, outer*channels) rows of `inner` elements, threaded.
template <class F>
void for_rows(ThreadPool* pool, const AxisSplit& s, F&& fn) {
  parallel_for(pool, s.outer * s.channels, static_cast<double>(s.inner), fn);
}

// ---- QuantizeLinear ----

class QuantizeLinearKernel final : public Kernel {
 public:
  QuantizeLinearKernel(DType out, int64_t axis) : out_(out), axis_(axis) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    const Tensor& scale = need(in, 1);
    const Tensor* zp = opt(in, 2);
    if (x.dtype != DType::f32) fail("QuantizeLinear: x must be float32, got ", dtype_name(x.dtype));
    if (scale.dtype != DType::f32) fail("QuantizeLinear: scale must be float32");
    DType yt = zp ? zp->dtype : out_;
    if (!q::is_q8(yt)) fail("QuantizeLinear: output type ", dtype_name(yt), " not handled");
    if (zp && zp->numel() != scale.numel())
      fail("QuantizeLinear: zero point ", shape_str(zp->shape), " vs scale ",
           shape_str(scale.shape));
    const AxisSplit s = split_for(x.shape, scale, axis_, "QuantizeLinear");
    out[0] = Tensor::empty(yt, x.shape);
    if (yt == DType::u8) {
      compute<uint8_t>(ctx, x, scale, zp, s, out[0]);
    } else {
      compute<int8_t>(ctx, x, scale, zp, s, out[0]);
    }
  }
  std::string describe() const override { return "native quantize"; }

 private:
  template <class T>
  static void compute(RunContext& ctx, const Tensor& x, const Tensor& scale, const Tensor* zp,
                      const AxisSplit& s, Tensor& y) {
    const std::vector<int32_t> zps = q::zp_values(zp, s.channels, "QuantizeLinear zero point");
    const float* xs = x.ptr<float>();
    const float* sc = scale.ptr<float>();
    T* ys = y.ptr<T>();
    // Rows of a vector's length or more go to the f32_qu8 kernel (quantize_one's division,
    // clamp and rounding, bit for bit). int8 runs as uint8 with zp + 128, then flips the top
    // bit: clamping to [-128 - zp, 127 - zp] is the same range either way.
    constexpr int64_t kVectorRow = 16;
    const F32QU8Kernels& kern = f32_qu8_kernels();
    constexpr bool kSigned = std::is_same_v<T, int8_t>;
    for_rows(ctx.pool, s, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t c = r % s.channels;
        const float sv = sc[scale.numel() == 1 ? 0 : c];
        const int32_t z = zps[c];
        const float* xr = xs + r * s.inner;
        T* yr = ys + r * s.inner;
        if (s.inner >= kVectorRow) {
          uint8_t* yb = reinterpret_cast<uint8_t*>(yr);
          kern.quantize(xr, s.inner, sv, kSigned ? z + 128 : z, yb);
          if constexpr (kSigned)
            for (int64_t i = 0; i < s.inner; ++i) yb[i] ^= 0x80;
        } else {
          for (int64_t i = 0; i < s.inner; ++i) yr[i] = q::quantize_one<T>(xr[i], sv, z);
        }
      }
    });
  }

  DType out_;
  int64_t axis_;
};

std::unique_ptr<Kernel> make_quantize(const KernelInit& init) {
  if (in_dtype(init, 0) != DType::f32 && in_dtype(init, 0) != DType::undefined) return nullptr;
  if (init.attrs.get_int("block_size", 0) != 0) return nullptr;
  if (init.attrs.has("precision")) return nullptr;
  DType out = DType::u8;
  if (init.has_input(2)) {
    out = in_dtype(init, 2);
  } else if (init.attrs.has("output_dtype")) {
    out = static_cast<DType>(init.attrs.get_int("output_dtype", 2));
  }
  if (!q::is_q8(out)) return nullptr;  // 16-bit, 4-bit, float8: reference fallback
  if (init.has_input(1) && in_dtype(init, 1) != DType::f32) return nullptr;
  return std::make_unique<QuantizeLinearKernel>(out, init.attrs.get_int("axis", 1));
}

// ---- DequantizeLinear ----

class DequantizeLinearKernel final : public Kernel {
 public:
  explicit DequantizeLinearKernel(int64_t axis) : axis_(axis) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    const Tensor& scale = need(in, 1);
    const Tensor* zp = opt(in, 2);
    if (scale.dtype != DType::f32) fail("DequantizeLinear: scale must be float32");
    if (zp && zp->dtype != x.dtype)
      fail("DequantizeLinear: zero point is ", dtype_name(zp->dtype), ", x is ",
           dtype_name(x.dtype));
    if (zp && zp->numel() != scale.numel())
      fail("DequantizeLinear: zero point ", shape_str(zp->shape), " vs scale ",
           shape_str(scale.shape));
    const AxisSplit s = split_for(x.shape, scale, axis_, "DequantizeLinear");
    out[0] = Tensor::empty(DType::f32, x.shape);
    switch (x.dtype) {
      case DType::u8: compute<uint8_t>(ctx, x, scale, zp, s, out[0]); break;
      case DType::i8: compute<int8_t>(ctx, x, scale, zp, s, out[0]); break;
      case DType::i32: compute<int32_t>(ctx, x, scale, zp, s, out[0]); break;
      default: fail("DequantizeLinear: x type ", dtype_name(x.dtype), " not handled");
    }
  }
  std::string describe() const override { return "native dequantize"; }

 private:
  // y = (float(x) - float(zp)) * scale, all float32, as the reference computes it.
  template <class T>
  static void compute(RunContext& ctx, const Tensor& x, const Tensor& scale, const Tensor* zp,
                      const AxisSplit& s, Tensor& y) {
    const std::vector<int32_t> zps = q::zp_values(zp, s.channels, "DequantizeLinear zero point");
    const T* xs = x.ptr<T>();
    const float* sc = scale.ptr<float>();
    float* ys = y.ptr<float>();
    for_rows(ctx.pool, s, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t c = r % s.channels;
        const float sv = sc[scale.numel() == 1 ? 0 : c];
        const float z = static_cast<float>(zps[c]);
        const T* xr = xs + r * s.inner;
        float* yr = ys + r * s.inner;
        for (int64_t i = 0; i < s.inner; ++i) yr[i] = (static_cast<float>(xr[i]) - z) * sv;
      }
    });
  }

  int64_t axis_;
};

std::unique_ptr<Kernel> make_dequantize(const KernelInit& init) {
  const DType xt = in_dtype(init, 0);
  if (xt != DType::u8 && xt != DType::i8 && xt != DType::i32 && xt != DType::undefined)
    return nullptr;
  if (init.attrs.get_int("block_size", 0) != 0) return nullptr;
  if (init.attrs.has("output_dtype") && init.attrs.get_int("output_dtype", 1) != 1) return nullptr;
  if (init.has_input(1) && in_dtype(init, 1) != DType::f32) return nullptr;
  if (!init.output_dtypes.empty() && init.output_dtypes[0] != DType::f32 &&
      init.output_dtypes[0] != DType::undefined)
    return nullptr;
  return std::make_unique<DequantizeLinearKernel>(init.attrs.get_int("axis", 1));
}

// ---- DynamicQuantizeLinear ----

// The reference's order: scale = (max(0, max x) - min(0, min x)) / 255 (1/255 when that range is
// 0), zp = round(clamp(0 - min / scale, 0, 255)), y = saturate(round(x / scale) + zp).
// onnxruntime instead uses scale 1 for an all-zero input (y and zp are 0 either way).
class DynamicQuantizeLinearKernel final : public Kernel {
 public:
  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    if (x.dtype != DType::f32) fail("DynamicQuantizeLinear: x must be float32");
    const int64_t n = x.numel();
    const q::DynamicParams p = q::dynamic_params(ctx.pool, x.ptr<float>(), n, q::DynamicRule::onnx);
    out[0] = Tensor::empty(DType::u8, x.shape);
    out[1] = Tensor::empty(DType::f32, {});
    out[2] = Tensor::empty(DType::u8, {});
    out[1].ptr<float>()[0] = p.scale;
    out[2].ptr<uint8_t>()[0] = static_cast<uint8_t>(p.zero_point);
    q::quantize_u8(ctx.pool, x.ptr<float>(), n, p, out[0].ptr<uint8_t>());
  }
  std::string describe() const override { return "native dynamic quantize"; }
};

std::unique_ptr<Kernel> make_dynamic_quantize(const KernelInit& init) {
  if (in_dtype(init, 0) != DType::f32 && in_dtype(init, 0) != DType::undefined) return nullptr;
  return std::make_unique<DynamicQuantizeLinearKernel>();
}

}  // namespace

SLIVER_REGISTER_KERNEL("QuantizeLinear", make_quantize);
SLIVER_REGISTER_KERNEL("DequantizeLinear", make_dequantize);
SLIVER_REGISTER_KERNEL("DynamicQuantizeLinear", make_dynamic_quantize);

}  // namespace sliver::ops
