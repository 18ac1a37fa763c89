// com.microsoft quantized elementwise ops, bit-exact with onnxruntime's CPU kernels (AVX2 build):
// QLinearAdd, QLinearMul, QLinearLeakyRelu, QLinearSigmoid, QLinearGlobalAveragePool,
// QLinearAveragePool, QLinearConcat.
//
// Binary ops compute onnxruntime's float formula per element with the kernels of
// ukernels/q8_vbinary/q8_vaddmul.h, which also documents the formulas (the fused multiply-adds
// and their order are part of them; python/sliver/ops/contrib.py has the same in numpy):
//  QLinearAdd:  ra = sa/sc, rb = sb/sc
//               vector-vector and scalar-B runs: fma(a, ra, fma(b, rb, zc - fma(ra, za, rb*zb)))
//               scalar-A runs:                   fma(b, rb, fma(a, ra, zc - fma(rb, zb, ra*za)))
//  QLinearMul:  (a - za)(b - zb) * (sa*sb/sc) + zc          (float32, no fusion)
//  then cvtps2dq (round half to even; NaN and |v| >= 2^31 give INT_MIN) and saturate.
// They used to be 64 KiB tables of every code pair: exact too, but a gather per element from a
// table twice the size of L1 is several times slower than 32 elements per AVX2 step.
//
// Unary ops keep a 256-entry table (as onnxruntime does itself): their functions (the
// logistic's rational approximation, LeakyRelu's branch) cost more than a lookup, which AVX2
// does 32 codes at a time with byte shuffles (ukernels/q8_vbinary/q8_vlut.h).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ops/common.h"
#include "ops/quant_util.h"
#include "sliver/broadcast.h"
#include "sliver/kernel.h"
#include "ukernels/q8_vbinary/q8_vaddmul.h"
#include "ukernels/q8_vbinary/q8_vlut.h"

namespace sliver::ops {
namespace {

// The code of byte b read as T (u8 or s8), as an int.
template <class T>
int32_t code(int b) {
  return static_cast<int32_t>(static_cast<T>(static_cast<uint8_t>(b)));
}

// QLinearAdd / QLinearMul on 32 codes per step; a broadcast is walked as runs in which each
// operand advances or repeats, which is also how onnxruntime picks its Add formula.
class QLinearAddMulKernel final : public Kernel {
 public:
  QLinearAddMulKernel(std::string op, Q8QLinearOp kind, DType t)
      : op_(std::move(op)), kind_(kind), t_(t), fn_(q8_qlinear_kernel(kind, t == DType::i8).fn) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& a = need(in, 0);
    const Tensor& b = need(in, 3);
    if (a.dtype != t_ || b.dtype != t_)
      fail(op_, ": inputs are ", dtype_name(a.dtype), shape_str(a.shape), " and ",
           dtype_name(b.dtype), shape_str(b.shape), ", expected ", dtype_name(t_));
    const Q8QLinearParams p = q8_qlinear_params(
        kind_, q::scalar_f32(need(in, 1), "A_scale"), q::scalar_zp(opt(in, 2), "A_zero_point"),
        q::scalar_f32(need(in, 4), "B_scale"), q::scalar_zp(opt(in, 5), "B_zero_point"),
        q::scalar_f32(need(in, 6), "C_scale"), q::scalar_zp(opt(in, 7), "C_zero_point"));
    const Shape shape = broadcast_shapes({a.shape, b.shape});
    out[0] = Tensor::empty(t_, shape);
    if (out[0].numel() == 0) return;
    const BroadcastLoop L = plan_broadcast(shape, {a.shape, b.shape});
    const uint8_t* pa = static_cast<const uint8_t*>(a.data);
    const uint8_t* pb = static_cast<const uint8_t*>(b.data);
    uint8_t* pc = static_cast<uint8_t*>(out[0].data);
    const int64_t sa = L.inner_stride(0), sb = L.inner_stride(1);
    const Q8QLinearFn fn = fn_;
    broadcast_for<2>(L, ctx.pool, 1.0, [&](int64_t n, int64_t y_off, const int64_t* off) {
      fn(p, n, pa + off[0], sa, pb + off[1], sb, pc + y_off);
    });
  }
  std::string describe() const override { return "native " + op_ + " (q8_vaddmul)"; }

 private:
  std::string op_;
  Q8QLinearOp kind_;
  DType t_;
  Q8QLinearFn fn_;
};

template <Q8QLinearOp kKind>
std::unique_ptr<Kernel> make_qlinear_add_mul(const KernelInit& init) {
  if (init.num_inputs() < 7) return nullptr;
  const DType t = q::q8_dtype(init, 0, 2);
  if (!q::is_q8(t)) return nullptr;
  return std::make_unique<QLinearAddMulKernel>(
      kKind == Q8QLinearOp::add ? "QLinearAdd" : "QLinearMul", kKind, t);
}

// ---- unary lookup ops ----

// MLAS's logistic (the FMA3 kernel): Eigen's rational approximation p(x) / q(x) + 0.5 on x
// clamped to [-18, 18], evaluated with fused multiply-adds, clamped to [0, 1].
float mlas_logistic(float x) {
  static const float kAlpha[] = {4.37031012579801e-11f, 1.15627324459942e-07f,
                                 6.08574864600143e-05f, 8.51377133304701e-03f,
                                 2.48287947061529e-01f};
  static const float kBeta[] = {6.10247389755681e-13f, 5.76102136993427e-09f,
                                6.29106785017040e-06f, 1.70198817374094e-03f,
                                1.16817656904453e-01f, 9.93151921023180e-01f};
  x = std::min(std::max(x, -18.f), 18.f);
  const float x2 = x * x;
  float p = std::fma(x2, kAlpha[0], kAlpha[1]);
  for (int i = 2; i < 5; ++i) p = std::fma(p, x2, kAlpha[i]);
  p = q::opaque(p * x);
  float q = std::fma(x2, kBeta[0], kBeta[1]);
  for (int i = 2; i < 6; ++i) q = std::fma(q, x2, kBeta[i]);
  const float y = p / q + 0.5f;
  return std::min(std::max(y, 0.f), 1.f);
}

// table[byte] = quantize(fn(xs * (code - xz))), onnxruntime's QlinearBuildLookupTable.
template <class T, class F>
std::vector<uint8_t> build_unary_table(float xs, int32_t xz, float ys, int32_t yz, F fn) {
  std::vector<uint8_t> t(256);
  for (int i = 0; i < 256; ++i) {
    const float x = xs * static_cast<float>(code<T>(i) - xz);
    t[i] = static_cast<uint8_t>(q::quantize_one<T>(fn(x), ys, yz));
  }
  return t;
}

void apply_table(ThreadPool* pool, const uint8_t* table, const uint8_t* x, uint8_t* y, int64_t n) {
  const Q8VLut1Fn fn = q8_vlut_kernels().lut1;
  parallel_for(pool, n, 1.0, [&](int64_t b, int64_t e) {
    if (e > b) fn(table, e - b, x + b, y + b);
  });
}

class QLinearUnaryKernel final : public Kernel {
 public:
  QLinearUnaryKernel(std::string op, DType t, std::vector<uint8_t> table)
      : op_(std::move(op)), t_(t), table_(std::move(table)) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    if (x.dtype != t_) fail(op_, ": input is ", dtype_name(x.dtype), ", expected ", dtype_name(t_));
    out[0] = Tensor::empty(t_, x.shape);
    apply_table(ctx.pool, table_.data(), static_cast<const uint8_t*>(x.data),
                static_cast<uint8_t*>(out[0].data), x.numel());
  }
  std::string describe() const override { return "native " + op_ + " (table)"; }

 private:
  std::string op_;
  DType t_;
  std::vector<uint8_t> table_;
};

template <class Fn>
std::unique_ptr<Kernel> make_unary(const KernelInit& init, const char* op, Fn fn) {
  if (init.num_inputs() < 4 || !init.is_const(1) || !init.is_const(3)) return nullptr;
  if (!q::const_or_missing(init, 2) || !q::const_or_missing(init, 4)) return nullptr;
  const DType t = q::q8_dtype(init, 0, 2);
  if (!q::is_q8(t)) return nullptr;
  const float xs = q::scalar_f32(init.const_inputs[1], "X_scale");
  const int32_t xz = q::scalar_zp(q::const_input(init, 2), "X_zero_point");
  const float ys = q::scalar_f32(init.const_inputs[3], "Y_scale");
  const int32_t yz = q::scalar_zp(q::const_input(init, 4), "Y_zero_point");
  auto table = t == DType::u8 ? build_unary_table<uint8_t>(xs, xz, ys, yz, fn)
                              : build_unary_table<int8_t>(xs, xz, ys, yz, fn);
  return std::make_unique<QLinearUnaryKernel>(op, t, std::move(table));
}

std::unique_ptr<Kernel> make_qlinear_leaky_relu(const KernelInit& init) {
  const float alpha = static_cast<float>(init.attrs.get_float("alpha", 0.01));
  return make_unary(init, "QLinearLeakyRelu",
                    [alpha](float v) { return v >= 0.f ? v : alpha * v; });
}

std::unique_ptr<Kernel> make_qlinear_sigmoid(const KernelInit& init) {
  return make_unary(init, "QLinearSigmoid", mlas_logistic);
}

// ---- QLinearGlobalAveragePool ----

// MLAS: acc = sum(x) - xz * n exactly in int32, then round(float(acc) * (xs / (ys * n))) + yz,
// clamped before rounding to [qmin - yz, qmax - yz].
class QLinearGlobalAvgPoolKernel final : public Kernel {
 public:
  explicit QLinearGlobalAvgPoolKernel(bool channels_last) : channels_last_(channels_last) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    if (x.rank() < 3)
      fail("QLinearGlobalAveragePool: input ", shape_str(x.shape), " has rank < 3");
    const float xs = q::scalar_f32(need(in, 1), "x_scale");
    const int32_t xz = q::scalar_zp(opt(in, 2), "x_zero_point");
    const float ys = q::scalar_f32(need(in, 3), "y_scale");
    const int32_t yz = q::scalar_zp(opt(in, 4), "y_zero_point");
    Shape oshape = x.shape;
    const int64_t c_axis = channels_last_ ? x.rank() - 1 : 1;
    const int64_t batch = x.shape[0], channels = x.shape[c_axis];
    int64_t image = 1;
    for (int64_t d = 1; d < x.rank(); ++d) {
      if (d == c_axis) continue;
      image *= x.shape[d];
      oshape[d] = 1;
    }
    out[0] = Tensor::empty(x.dtype, oshape);
    if (x.dtype == DType::u8) {
      compute<uint8_t>(ctx, x, xs, xz, ys, yz, batch, channels, image, out[0]);
    } else if (x.dtype == DType::i8) {
      compute<int8_t>(ctx, x, xs, xz, ys, yz, batch, channels, image, out[0]);
    } else {
      fail("QLinearGlobalAveragePool: input type ", dtype_name(x.dtype), " not handled");
    }
  }
  std::string describe() const override { return "native QLinearGlobalAveragePool"; }

 private:
  template <class T>
  void compute(RunContext& ctx, const Tensor& x, float xs, int32_t xz, float ys, int32_t yz,
               int64_t batch, int64_t channels, int64_t image, Tensor& y) const {
    const float scale = xs / (ys * static_cast<float>(image));
    const int32_t bias = -xz * static_cast<int32_t>(image);
    const float lo = static_cast<float>(q::qmin<T>() - yz);
    const float hi = static_cast<float>(q::qmax<T>() - yz);
    auto finish = [&](int32_t sum) {
      float v = static_cast<float>(sum + bias) * scale;
      v = v > lo ? v : lo;
      v = v < hi ? v : hi;
      return static_cast<T>(static_cast<int32_t>(q::round_even_small(v)) + yz);
    };
    const T* px = x.ptr<T>();
    T* py = y.ptr<T>();
    if (!channels_last_) {
      const double cost = static_cast<double>(image);
      parallel_for(ctx.pool, batch * channels, cost, [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          const T* row = px + r * image;
          int32_t sum = 0;
          for (int64_t i = 0; i < image; ++i) sum += row[i];
          py[r] = finish(sum);
        }
      });
      return;
    }
    parallel_for(ctx.pool, batch, static_cast<double>(image * channels), [&](int64_t b, int64_t e) {
      std::vector<int32_t> acc(static_cast<size_t>(channels));
      for (int64_t n = b; n < e; ++n) {
        std::fill(acc.begin(), acc.end(), 0);
        const T* img = px + n * image * channels;
        for (int64_t i = 0; i < image; ++i)
          for (int64_t c = 0; c < channels; ++c) acc[c] += img[i * channels + c];
        for (int64_t c = 0; c < channels; ++c) py[n * channels + c] = finish(acc[c]);
      }
    });
  }

  bool channels_last_;
};

std::unique_ptr<Kernel> make_qlinear_global_avg_pool(const KernelInit& init) {
  const DType t = in_dtype(init, 0);
  if (t != DType::undefined && !q::is_q8(t)) return nullptr;
  return std::make_unique<QLinearGlobalAvgPoolKernel>(init.attrs.get_int("channels_last", 0) != 0);
}

// ---- QLinearAveragePool ----

// onnxruntime's float path: dequantize (table), sum each window in float32 in its h, w, d order
// from 0, divide by the count (the whole kernel with count_include_pad, else the taps inside
// the image; windows are clamped to the image, never to the padding), then
// round(y / y_scale + y_zero_point), saturated. A kernel that covers the whole unpadded image
// takes onnxruntime's QLinearGlobalAveragePool path instead (integer sum).
class QLinearAvgPoolKernel final : public Kernel {
 public:
  QLinearAvgPoolKernel(std::vector<int64_t> kernel, std::vector<int64_t> strides,
                       std::vector<int64_t> pads, std::string auto_pad, bool ceil_mode,
                       bool include_pad, bool channels_last)
      : kernel_(std::move(kernel)), strides_(std::move(strides)), pads_(std::move(pads)),
        auto_pad_(std::move(auto_pad)), ceil_mode_(ceil_mode), include_pad_(include_pad),
        channels_last_(channels_last), global_(channels_last) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    const int64_t nd = static_cast<int64_t>(kernel_.size());
    if (x.rank() != nd + 2)
      fail("QLinearAveragePool: input ", shape_str(x.shape), " does not match kernel rank ", nd);
    const int64_t c_axis = channels_last_ ? x.rank() - 1 : 1;
    std::vector<int64_t> spatial;
    for (int64_t d = 1; d < x.rank(); ++d)
      if (d != c_axis) spatial.push_back(x.shape[d]);
    std::vector<int64_t> osz, begin;
    const bool padded = geometry(spatial, &osz, &begin);
    if (spatial == kernel_ && !padded) {
      global_.run(ctx, in, out);
      return;
    }
    if (x.dtype == DType::u8) {
      compute<uint8_t>(ctx, in, x, spatial, osz, begin, c_axis, out);
    } else if (x.dtype == DType::i8) {
      compute<int8_t>(ctx, in, x, spatial, osz, begin, c_axis, out);
    } else {
      fail("QLinearAveragePool: input type ", dtype_name(x.dtype), " not handled");
    }
  }
  std::string describe() const override { return "native QLinearAveragePool"; }

 private:
  // Output size and begin pad per spatial dim, as onnxruntime's PoolAttributes; returns whether
  // any padding applies.
  bool geometry(const std::vector<int64_t>& in, std::vector<int64_t>* out,
                std::vector<int64_t>* begin) const {
    const size_t nd = kernel_.size();
    bool padded = false;
    for (size_t i = 0; i < nd; ++i) {
      const int64_t size = in[i], k = kernel_[i], s = strides_[i];
      if (auto_pad_ == "SAME_UPPER" || auto_pad_ == "SAME_LOWER") {
        const int64_t o = (size + s - 1) / s;
        const int64_t total = std::max<int64_t>(0, (o - 1) * s + k - size);
        out->push_back(o);
        begin->push_back(auto_pad_ == "SAME_UPPER" ? total / 2 : total - total / 2);
        padded |= total != 0;
        continue;
      }
      const int64_t pb = auto_pad_ == "VALID" ? 0 : pads_[i];
      const int64_t pe = auto_pad_ == "VALID" ? 0 : pads_[i + nd];
      padded |= pb != 0 || pe != 0;
      const int64_t span = size + pb + pe - k;
      int64_t o = ceil_mode_ ? (span + s - 1) / s + 1 : span / s + 1;
      if (ceil_mode_ && (o - 1) * s >= size + pb) --o;
      out->push_back(std::max<int64_t>(o, 0));
      begin->push_back(pb);
    }
    return padded;
  }

  template <class T>
  void compute(RunContext& ctx, const std::vector<const Tensor*>& in, const Tensor& x,
               const std::vector<int64_t>& spatial, const std::vector<int64_t>& osz,
               const std::vector<int64_t>& begin, int64_t c_axis, std::vector<Tensor>& out) const {
    const float xs = q::scalar_f32(need(in, 1), "x_scale");
    const int32_t xz = q::scalar_zp(opt(in, 2), "x_zero_point");
    const float ys = q::scalar_f32(need(in, 3), "y_scale");
    const int32_t yz = q::scalar_zp(opt(in, 4), "y_zero_point");
    // Pad to 3 spatial dims (kernel 1, stride 1, no pad): the summation order is unchanged.
    std::vector<int64_t> isz3 = spatial, osz3 = osz, k3 = kernel_, s3 = strides_, b3 = begin;
    while (isz3.size() < 3) {
      isz3.push_back(1);
      osz3.push_back(1);
      k3.push_back(1);
      s3.push_back(1);
      b3.push_back(0);
    }
    Shape oshape = {x.shape[0]};
    if (!channels_last_) oshape.push_back(x.shape[c_axis]);
    for (int64_t v : osz) oshape.push_back(v);
    if (channels_last_) oshape.push_back(x.shape[c_axis]);
    out[0] = Tensor::empty(x.dtype, oshape);
    float table[256];
    for (int i = 0; i < 256; ++i) table[i] = xs * static_cast<float>(code<T>(i) - xz);
    const int64_t batch = x.shape[0], channels = x.shape[c_axis];
    const int64_t in_img = isz3[0] * isz3[1] * isz3[2], out_img = osz3[0] * osz3[1] * osz3[2];
    // Element strides of (channel, spatial index) in both layouts.
    const int64_t cs_in = channels_last_ ? 1 : in_img, ps_in = channels_last_ ? channels : 1;
    const int64_t cs_out = channels_last_ ? 1 : out_img, ps_out = channels_last_ ? channels : 1;
    const uint8_t* px = static_cast<const uint8_t*>(x.data);
    uint8_t* py = static_cast<uint8_t*>(out[0].data);
    const float lo = static_cast<float>(q::qmin<T>()), hi = static_cast<float>(q::qmax<T>());
    const float kernel_count = static_cast<float>(k3[0] * k3[1] * k3[2]);
    parallel_for(ctx.pool, batch * channels, static_cast<double>(out_img * k3[0] * k3[1] * k3[2]),
                 [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t n = r / channels, c = r % channels;
        const uint8_t* xi = px + n * channels * in_img + c * cs_in;
        uint8_t* yo = py + n * channels * out_img + c * cs_out;
        for (int64_t o0 = 0; o0 < osz3[0]; ++o0) {
          int64_t h0 = o0 * s3[0] - b3[0], h1 = std::min(h0 + k3[0], isz3[0]);
          h0 = std::max<int64_t>(h0, 0);
          for (int64_t o1 = 0; o1 < osz3[1]; ++o1) {
            int64_t w0 = o1 * s3[1] - b3[1], w1 = std::min(w0 + k3[1], isz3[1]);
            w0 = std::max<int64_t>(w0, 0);
            for (int64_t o2 = 0; o2 < osz3[2]; ++o2) {
              int64_t d0 = o2 * s3[2] - b3[2], d1 = std::min(d0 + k3[2], isz3[2]);
              d0 = std::max<int64_t>(d0, 0);
              float sum = 0.f;
              for (int64_t h = h0; h < h1; ++h)
                for (int64_t w = w0; w < w1; ++w)
                  for (int64_t d = d0; d < d1; ++d)
                    sum += table[xi[((h * isz3[1] + w) * isz3[2] + d) * ps_in]];
              const int64_t taps = (h1 - h0) * (w1 - w0) * (d1 - d0);
              const float count = include_pad_ ? kernel_count : static_cast<float>(taps);
              float v = sum / count / ys + static_cast<float>(yz);
              v = v > lo ? v : lo;
              v = v < hi ? v : hi;
              const int64_t oi = (o0 * osz3[1] + o1) * osz3[2] + o2;
              yo[oi * ps_out] = static_cast<uint8_t>(static_cast<T>(q::round_even_small(v)));
            }
          }
        }
      }
    });
  }

  std::vector<int64_t> kernel_, strides_, pads_;
  std::string auto_pad_;
  bool ceil_mode_, include_pad_, channels_last_;
  QLinearGlobalAvgPoolKernel global_;
};

std::unique_ptr<Kernel> make_qlinear_avg_pool(const KernelInit& init) {
  const DType t = in_dtype(init, 0);
  if (t != DType::undefined && !q::is_q8(t)) return nullptr;
  std::vector<int64_t> kernel = init.attrs.get_ints("kernel_shape", {});
  const size_t nd = kernel.size();
  if (nd < 1 || nd > 3) return nullptr;
  std::vector<int64_t> strides = init.attrs.get_ints("strides", {});
  if (strides.empty()) strides.assign(nd, 1);
  std::vector<int64_t> pads = init.attrs.get_ints("pads", {});
  if (pads.empty()) pads.assign(2 * nd, 0);
  if (strides.size() != nd || pads.size() != 2 * nd) return nullptr;
  if (!init.attrs.get_ints("dilations", {}).empty()) return nullptr;
  return std::make_unique<QLinearAvgPoolKernel>(
      std::move(kernel), std::move(strides), std::move(pads),
      init.attrs.get_string("auto_pad", "NOTSET"), init.attrs.get_int("ceil_mode", 0) != 0,
      init.attrs.get_int("count_include_pad", 0) != 0,
      init.attrs.get_int("channels_last", 0) != 0);
}

// ---- QLinearConcat ----

// Inputs: Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) triples. Each input is copied
// when its scale and zero point equal the output's, else mapped through a requantize table
// (quantize(xs * (code - xz)) with the output's parameters), as onnxruntime does.
class QLinearConcatKernel final : public Kernel {
 public:
  explicit QLinearConcatKernel(int64_t axis) : axis_(axis) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    if (in.size() < 5 || (in.size() - 2) % 3 != 0)
      fail("QLinearConcat: expected Y_scale, Y_zero_point and (X, scale, zero point) triples, got ",
           in.size(), " inputs");
    const float ys = q::scalar_f32(need(in, 0), "Y_scale");
    const Tensor& yzt = need(in, 1);
    const DType t = yzt.dtype;
    if (!q::is_q8(t)) fail("QLinearConcat: Y_zero_point type ", dtype_name(t), " not handled");
    const int32_t yz = q::scalar_zp(&yzt, "Y_zero_point");
    const size_t n_in = (in.size() - 2) / 3;
    const Tensor& first = need(in, 2);
    const int64_t rank = first.rank();
    const int64_t axis = normalize_axis(axis_, rank);
    Shape oshape = first.shape;
    oshape[axis] = 0;
    for (size_t k = 0; k < n_in; ++k) {
      const Tensor& x = need(in, 2 + 3 * k);
      if (x.dtype != t || x.rank() != rank)
        fail("QLinearConcat: input ", k, " is ", dtype_name(x.dtype), shape_str(x.shape));
      for (int64_t d = 0; d < rank; ++d)
        if (d != axis && x.shape[d] != first.shape[d])
          fail("QLinearConcat: input ", k, " shape ", shape_str(x.shape), " vs ",
               shape_str(first.shape));
      oshape[axis] += x.shape[axis];
    }
    out[0] = Tensor::empty(t, oshape);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= oshape[d];
    for (int64_t d = axis + 1; d < rank; ++d) inner *= oshape[d];
    const int64_t out_pitch = oshape[axis] * inner;
    uint8_t* py = static_cast<uint8_t*>(out[0].data);
    int64_t offset = 0;
    for (size_t k = 0; k < n_in; ++k) {
      const Tensor& x = *in[2 + 3 * k];
      const float xs = q::scalar_f32(need(in, 3 + 3 * k), "X_scale");
      const int32_t xz = q::scalar_zp(opt(in, 4 + 3 * k), "X_zero_point");
      const int64_t pitch = x.shape[axis] * inner;
      const uint8_t* px = static_cast<const uint8_t*>(x.data);
      const bool copy = xs == ys && xz == yz;
      std::vector<uint8_t> table;
      if (!copy) {
        auto id = [](float v) { return v; };
        table = t == DType::u8 ? build_unary_table<uint8_t>(xs, xz, ys, yz, id)
                               : build_unary_table<int8_t>(xs, xz, ys, yz, id);
      }
      const Q8VLut1Fn lut = q8_vlut_kernels().lut1;
      parallel_for(ctx.pool, outer, static_cast<double>(pitch), [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) {
          const uint8_t* src = px + o * pitch;
          uint8_t* dst = py + o * out_pitch + offset;
          if (copy) {
            std::memcpy(dst, src, static_cast<size_t>(pitch));
          } else if (pitch > 0) {
            lut(table.data(), pitch, src, dst);
          }
        }
      });
      offset += pitch;
    }
  }
  std::string describe() const override { return "native QLinearConcat"; }

 private:
  int64_t axis_;
};

std::unique_ptr<Kernel> make_qlinear_concat(const KernelInit& init) {
  if (!init.attrs.has("axis")) return nullptr;
  return std::make_unique<QLinearConcatKernel>(init.attrs.get_int("axis", 0));
}

}  // namespace

SLIVER_REGISTER_KERNEL("com.microsoft:QLinearAdd", make_qlinear_add_mul<Q8QLinearOp::add>);
SLIVER_REGISTER_KERNEL("com.microsoft:QLinearMul", make_qlinear_add_mul<Q8QLinearOp::mul>);
SLIVER_REGISTER_KERNEL("com.microsoft:QLinearLeakyRelu", make_qlinear_leaky_relu);
SLIVER_REGISTER_KERNEL("com.microsoft:QLinearSigmoid", make_qlinear_sigmoid);
SLIVER_REGISTER_KERNEL("com.microsoft:QLinearGlobalAveragePool", make_qlinear_global_avg_pool);
SLIVER_REGISTER_KERNEL("com.microsoft:QLinearAveragePool", make_qlinear_avg_pool);
SLIVER_REGISTER_KERNEL("com.microsoft:QLinearConcat", make_qlinear_concat);

}  // namespace sliver::ops
