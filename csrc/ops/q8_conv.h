// 8-bit convolution (QLinearConv, ConvInteger) on the exact int8 GEMM, NCHW, 1-D and 2-D.
//
// Per image and group, the receptive fields of a tile of output pixels are gathered into rows
// ("im2row": row p holds the Cg*KH*KW inputs output pixel p reads, in the weight's own
// [c][kh][kw] order, padding filled with the input zero point so it contributes exactly 0).
// That is the GEMM's A; the weights [OCg, Cg*KH*KW] are B, packed once with their per-channel
// zero points. The GEMM writes pixel-major tiles [pixels, OCg], which are scattered into the
// channel-major output. Depthwise convolutions (one input channel per group) would waste the
// GEMM on K = KH*KW, so they run a direct loop with the same exact integer sums and the same
// requantization (requant.h's scalar requantize()).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "ops/common.h"
#include "ops/quant_util.h"
#include "sliver/qgemm.h"
#include "sliver/requant.h"
#include "ukernels/transpose/transpose.h"

namespace sliver::ops::q {

/// Output of an 8-bit conv: raw int32 sums (ConvInteger) or requantized u8/s8 (QLinearConv).
struct ConvOutputParams {
  bool quantized = false;
  DType y_type = DType::i32;
  float x_scale = 1.f, y_scale = 1.f;
  std::vector<float> w_scale;  // [OC]
  int32_t y_zero_point = 0;
  RequantRounding rounding = RequantRounding::onnx_reference;
  // Narrower code range, e.g. a Relu/Clip folded into the requantization (clamped to the type).
  int32_t act_min = std::numeric_limits<int32_t>::min();
  int32_t act_max = std::numeric_limits<int32_t>::max();

  int32_t qmin() const { return std::max(y_type == DType::u8 ? 0 : -128, act_min); }
  int32_t qmax() const { return std::min(y_type == DType::u8 ? 255 : 127, act_max); }
};

/// Geometry, fixed at creation from the attributes and the weight shape.
struct ConvGeometry {
  int64_t group = 1, oc = 0, cg = 0;  // output channels, input channels per group
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  std::vector<int64_t> pads;  // begin/end per spatial dim, from attributes (auto_pad at run time)
  std::string auto_pad = "NOTSET";
  int spatial = 2;  // 1 or 2

  int64_t k() const { return cg * kh * kw; }
  int64_t ocg() const { return oc / group; }
};

/// Parses conv attributes for a weight of shape w; returns false for what this kernel does not
/// handle (3-D and higher convs, inconsistent attributes).
inline bool parse_conv(const Attrs& a, const Shape& w, ConvGeometry* g) {
  if (w.size() != 3 && w.size() != 4) return false;
  g->spatial = static_cast<int>(w.size()) - 2;
  g->group = a.get_int("group", 1);
  g->oc = w[0];
  g->cg = w[1];
  if (g->group < 1 || g->oc % g->group != 0) return false;
  g->kh = g->spatial == 2 ? w[2] : 1;
  g->kw = w.back();
  const auto ks = a.get_ints("kernel_shape", {});
  if (!ks.empty() && (static_cast<int>(ks.size()) != g->spatial || ks.back() != g->kw ||
                      (g->spatial == 2 && ks[0] != g->kh)))
    return false;
  auto two = [&](const char* name, int64_t* h, int64_t* w_) {
    const auto v = a.get_ints(name, {});
    if (v.empty()) return true;
    if (static_cast<int>(v.size()) != g->spatial) return false;
    *w_ = v.back();
    if (g->spatial == 2) *h = v[0];
    return true;
  };
  if (!two("strides", &g->sh, &g->sw) || !two("dilations", &g->dh, &g->dw)) return false;
  g->pads = a.get_ints("pads", std::vector<int64_t>(2 * g->spatial, 0));
  if (static_cast<int>(g->pads.size()) != 2 * g->spatial) return false;
  g->auto_pad = a.get_string("auto_pad", "NOTSET");
  return g->sh > 0 && g->sw > 0 && g->dh > 0 && g->dw > 0;
}

// Output size and begin pad of one spatial dim.
inline void conv_dim(const std::string& auto_pad, int64_t in, int64_t k, int64_t s, int64_t d,
                     int64_t pb, int64_t pe, int64_t* out, int64_t* begin) {
  const int64_t ext = (k - 1) * d + 1;
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    *out = (in + s - 1) / s;
    const int64_t total = std::max<int64_t>(0, (*out - 1) * s + ext - in);
    *begin = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    return;
  }
  if (auto_pad == "VALID") pb = pe = 0;
  *out = (in + pb + pe - ext) / s + 1;
  *begin = pb;
  if (in + pb + pe < ext) *out = 0;
}

/// dst[j * dst_ld + i] = src[i * src_ld + j] for i < rows, j < cols: the tiled 8-/32-bit
/// transpose kernels (transpose.h; a plain double loop strides through memory on one side and
/// thrashes for large planes).
template <class T>
void transpose_block(const T* src, int64_t rows, int64_t cols, int64_t src_ld, T* dst,
                     int64_t dst_ld) {
  static_assert(sizeof(T) == 1 || sizeof(T) == 4, "8- or 32-bit elements");
  static const TransposeFn fn = transpose_kernel(static_cast<int>(sizeof(T)));
  fn(cols, rows, src, src_ld, dst, dst_ld);
}

/// Requantizes n int32 sums of one output channel exactly as requant.h's requantize() does, in a
/// loop the compiler can vectorize: the float64 (reference) order rounds with the 1.5 * 2^52
/// trick after clamping, the float32 (onnxruntime) order with round_even_small.
inline void requantize_row(const int32_t* acc, int64_t n, float multiplier, int32_t zp,
                           int32_t qlo, int32_t qhi, RequantRounding mode, uint8_t* out,
                           bool signed_out) {
  if (mode == RequantRounding::onnx_reference) {
    const double m = multiplier, z = zp, lo = qlo, hi = qhi;
    constexpr double kMagic = 6755399441055744.0;  // 1.5 * 2^52
    for (int64_t i = 0; i < n; ++i) {
      double d = opaque(static_cast<double>(acc[i]) * m) + z;  // two roundings
      d = d > lo ? d : lo;
      d = d < hi ? d : hi;
      const int32_t r = static_cast<int32_t>((d + kMagic) - kMagic);
      out[i] = signed_out ? static_cast<uint8_t>(static_cast<int8_t>(r)) : static_cast<uint8_t>(r);
    }
    return;
  }
  const float lo = static_cast<float>(qlo - zp), hi = static_cast<float>(qhi - zp);
  for (int64_t i = 0; i < n; ++i) {
    float f = static_cast<float>(acc[i]) * multiplier;
    f = f > lo ? f : lo;
    f = f < hi ? f : hi;
    const int32_t r = static_cast<int32_t>(round_even_small(f)) + zp;
    out[i] = signed_out ? static_cast<uint8_t>(static_cast<int8_t>(r)) : static_cast<uint8_t>(r);
  }
}

/// The packed weights and geometry of one conv node; the op kernels read their parameters and
/// call compute().
///
/// Dense and grouped convs gather from an NHWC copy of the image, so each (ky, kx) tap of a
/// receptive field is Cg contiguous bytes; the weights are permuted to the same
/// [oc][ky][kx][c] order before packing, and a 1x1 stride-1 conv needs no gather at all (the
/// NHWC image is A). Depthwise convs pad each input plane once (x - x_zp as int16, zeros
/// around) and accumulate whole output rows per tap, which vectorizes for stride 1.
class Q8Conv {
 public:
  // The direct depthwise loop sums taps in int32 without wrapping: K * 255^2 < 2^31.
  static constexpr int64_t kMaxDepthwiseTaps = 32768;

  /// w: the constant weight [OC, Cg, (KH,) KW]; w_zp: 1 or OC values.
  Q8Conv(std::string op, ConvGeometry g, const Tensor& w, std::vector<int32_t> w_zp,
         std::vector<int32_t> bias)
      : op_(std::move(op)), g_(std::move(g)), bias_(std::move(bias)) {
    const int64_t ocg = g_.ocg(), K = g_.k(), taps = g_.kh * g_.kw;
    w_zp_.resize(static_cast<size_t>(g_.oc));
    for (int64_t o = 0; o < g_.oc; ++o) w_zp_[o] = w_zp[w_zp.size() == 1 ? 0 : o];
    const uint8_t* pw = static_cast<const uint8_t*>(w.data);
    if (depthwise()) {
      wc_.resize(static_cast<size_t>(g_.oc * K));  // (w - zp) per tap, in [-255, 255]
      for (int64_t o = 0; o < g_.oc; ++o)
        for (int64_t t = 0; t < K; ++t) {
          const int32_t v = w.dtype == DType::u8 ? int32_t{pw[o * K + t]}
                                                 : int32_t{static_cast<int8_t>(pw[o * K + t])};
          wc_[o * K + t] = static_cast<int16_t>(v - w_zp_[o]);
        }
      return;
    }
    std::vector<uint8_t> perm(static_cast<size_t>(g_.oc * K));  // [oc][tap][c]
    for (int64_t o = 0; o < g_.oc; ++o)
      for (int64_t c = 0; c < g_.cg; ++c)
        for (int64_t t = 0; t < taps; ++t) perm[o * K + t * g_.cg + c] = pw[o * K + c * taps + t];
    const bool per_col = w_zp.size() > 1;
    for (int64_t gi = 0; gi < g_.group; ++gi)
      packed_.push_back(pack_q8_b(K, ocg, perm.data() + gi * ocg * K, w.dtype, K,
                                  /*trans_b=*/true, w_zp_.data() + (per_col ? gi * ocg : 0),
                                  per_col));
    if (qgemm_native_exact())  // only the native kernels read them (compute's qgemm call)
      for (auto& pk : packed_) q8_drop_pair_fixes(*pk);
  }

  /// y = conv(x) with the output described by op (allocated here).
  void compute(ThreadPool* pool, const Tensor& x, int32_t x_zp, const ConvOutputParams& op,
               Tensor& y) const {
    if (!is_q8(x.dtype)) fail(op_, ": X must be uint8 or int8, got ", dtype_name(x.dtype));
    if (x.rank() != g_.spatial + 2)
      fail(op_, ": X ", shape_str(x.shape), " does not match a ", g_.spatial, "-D kernel");
    const int64_t batch = x.shape[0], C = x.shape[1];
    if (C != g_.cg * g_.group)
      fail(op_, ": X ", shape_str(x.shape), " has ", C, " channels, weights expect ",
           g_.cg * g_.group);
    const int64_t H = g_.spatial == 2 ? x.shape[2] : 1, W = x.shape.back();
    int64_t oh = 1, ow = 1, pt = 0, pl = 0;
    if (g_.spatial == 2)
      conv_dim(g_.auto_pad, H, g_.kh, g_.sh, g_.dh, g_.pads[0], g_.pads[2], &oh, &pt);
    conv_dim(g_.auto_pad, W, g_.kw, g_.sw, g_.dw, g_.pads[g_.spatial - 1],
             g_.pads[2 * g_.spatial - 1], &ow, &pl);
    Shape ys = {batch, g_.oc};
    if (g_.spatial == 2) ys.push_back(oh);
    ys.push_back(ow);
    y = Tensor::empty(op.quantized ? op.y_type : DType::i32, ys);
    if (y.numel() == 0) return;
    const Geo geo{H, W, oh, ow, pt, pl};
    if (depthwise()) {
      if (x.dtype == DType::u8) {
        depthwise_path<uint8_t>(pool, x, x_zp, op, geo, y);
      } else {
        depthwise_path<int8_t>(pool, x, x_zp, op, geo, y);
      }
      return;
    }
    gemm_path(pool, x, x_zp, op, geo, y);
  }

  std::string describe() const {
    return "native " + op_ + (depthwise() ? " (depthwise direct)" : " (nhwc im2row + q8 gemm)");
  }
  bool depthwise() const { return g_.cg == 1 && g_.group > 1 && g_.k() <= kMaxDepthwiseTaps; }
  const ConvGeometry& geometry() const { return g_; }

 private:
  struct Geo {
    int64_t H, W, oh, ow, pt, pl;
  };

  bool pointwise() const {
    return g_.kh == 1 && g_.kw == 1 && g_.sh == 1 && g_.sw == 1 &&
           std::all_of(g_.pads.begin(), g_.pads.end(), [](int64_t p) { return p == 0; }) &&
           (g_.auto_pad == "NOTSET" || g_.auto_pad == "VALID");
  }

  // Rows [p0, p1) of the receptive-field matrix of group gi from the NHWC image xh [H][W][C].
  // With one group and no dilation, a window row (kw taps of all C channels) is one run of
  // kw * C contiguous bytes in the NHWC image, so an interior window row is a single copy.
  void im2row(const uint8_t* xh, int64_t C, int64_t gi, int64_t p0, int64_t p1, const Geo& e,
              uint8_t pad, uint8_t* a) const {
    const int64_t K = g_.k(), cg = g_.cg, run = g_.kw * cg;
    const bool runs = g_.group == 1 && g_.dw == 1;
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t oy = p / e.ow, ox = p % e.ow;
      const int64_t ix0 = ox * g_.sw - e.pl;
      uint8_t* dst = a + (p - p0) * K;
      for (int64_t ky = 0; ky < g_.kh; ++ky, dst += run) {
        const int64_t iy = oy * g_.sh - e.pt + ky * g_.dh;
        if (iy < 0 || iy >= e.H) {
          std::memset(dst, pad, static_cast<size_t>(run));
          continue;
        }
        const uint8_t* xrow = xh + iy * e.W * C + gi * cg;
        if (runs && ix0 >= 0 && ix0 + g_.kw <= e.W) {
          copy_bytes(dst, xrow + ix0 * C, run);
          continue;
        }
        for (int64_t kx = 0; kx < g_.kw; ++kx) {
          const int64_t ix = ix0 + kx * g_.dw;
          uint8_t* d = dst + kx * cg;
          if (ix < 0 || ix >= e.W) {
            for (int64_t ch = 0; ch < cg; ++ch) d[ch] = pad;
          } else {
            copy_bytes(d, xrow + ix * C, cg);
          }
        }
      }
    }
  }

  // Short runs are cheaper as an inline loop than a library call.
  static void copy_bytes(uint8_t* dst, const uint8_t* src, int64_t n) {
    if (n >= 32) {
      std::memcpy(dst, src, static_cast<size_t>(n));
    } else {
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
    }
  }

  void gemm_path(ThreadPool* pool, const Tensor& x, int32_t x_zp, const ConvOutputParams& op,
                 const Geo& e, Tensor& y) const {
    const int64_t K = g_.k(), ocg = g_.ocg(), pixels = e.oh * e.ow, hw = e.H * e.W;
    const int64_t C = g_.cg * g_.group;
    const bool direct = pointwise();
    // Pixel tiles bound the im2row buffer (~1 MiB) while keeping GEMM calls large.
    const int64_t tile =
        direct ? pixels
               : std::min(pixels, std::max<int64_t>(64, (1 << 20) / std::max<int64_t>(K, 1)));
    std::vector<uint8_t> xh(static_cast<size_t>(hw * C)), a;
    if (!direct) a.resize(static_cast<size_t>(tile * K));
    const size_t ce = dtype_size(y.dtype);
    std::vector<uint8_t> c(static_cast<size_t>(tile * ocg) * ce);
    const uint8_t pad = static_cast<uint8_t>(x_zp);
    const uint8_t* px = static_cast<const uint8_t*>(x.data);
    uint8_t* py = static_cast<uint8_t*>(y.data);
    for (int64_t n = 0; n < x.shape[0]; ++n) {
      const uint8_t* xn = px + n * C * hw;
      parallel_for(pool, hw, static_cast<double>(C), [&](int64_t b, int64_t end) {
        transpose_block(xn + b, C, end - b, hw, xh.data() + b * C, C);  // [C][hw] -> [hw][C]
      });
      for (int64_t gi = 0; gi < g_.group; ++gi) {
        for (int64_t p0 = 0; p0 < pixels; p0 += tile) {
          const int64_t p1 = std::min(pixels, p0 + tile), rows = p1 - p0;
          QGemmArgs args;
          args.M = rows;
          if (direct) {
            args.a = xh.data() + p0 * C + gi * g_.cg;
            args.lda = C;
          } else {
            parallel_for(pool, rows, static_cast<double>(K), [&](int64_t b, int64_t end) {
              im2row(xh.data(), C, gi, p0 + b, p0 + end, e, pad, a.data() + b * K);
            });
            args.a = a.data();
            args.lda = K;
          }
          args.a_type = x.dtype;
          args.a_zero_point = x_zp;
          args.c = c.data();
          args.ldc = ocg;
          args.bias = bias_.empty() ? nullptr : bias_.data() + gi * ocg;
          if (op.quantized) {
            args.output = QGemmOutput::quantized;
            args.a_scale = op.x_scale;
            args.b_scale = op.w_scale.data() + gi * ocg;
            args.b_scale_per_column = true;
            args.y_scale = op.y_scale;
            args.y_zero_point = op.y_zero_point;
            args.y_type = op.y_type;
            args.qmin = op.qmin();
            args.qmax = op.qmax();
            args.rounding = op.rounding;
          }
          qgemm(args, *packed_[gi], pool);
          // [rows, ocg] -> y[n, gi*ocg + o, p0 + r]
          uint8_t* yg = py + ((n * g_.oc + gi * ocg) * pixels + p0) * ce;
          parallel_for(pool, ocg, static_cast<double>(rows), [&](int64_t b, int64_t end) {
            if (ce == 1) {
              transpose_block(c.data() + b, rows, end - b, ocg, yg + b * pixels, pixels);
            } else {
              transpose_block(reinterpret_cast<const int32_t*>(c.data()) + b, rows, end - b, ocg,
                              reinterpret_cast<int32_t*>(yg) + b * pixels, pixels);
            }
          });
        }
      }
    }
  }

  template <class T>
  void depthwise_path(ThreadPool* pool, const Tensor& x, int32_t x_zp,
                      const ConvOutputParams& op, const Geo& e, Tensor& y) const {
    const int64_t mult = g_.oc / g_.group, K = g_.k(), pixels = e.oh * e.ow;
    // Padded plane: rows and columns the windows can reach, zeros outside the image.
    const int64_t ph = std::max((e.oh - 1) * g_.sh + (g_.kh - 1) * g_.dh + 1, e.pt + e.H);
    const int64_t pw = std::max((e.ow - 1) * g_.sw + (g_.kw - 1) * g_.dw + 1, e.pl + e.W);
    const T* px = x.ptr<T>();
    const int32_t qlo = op.qmin(), qhi = op.qmax();
    const bool signed_out = op.y_type == DType::i8;
    std::vector<float> scale;
    if (op.quantized) {
      scale.resize(static_cast<size_t>(g_.oc));
      for (int64_t o = 0; o < g_.oc; ++o)
        scale[o] = requant_multiplier(op.x_scale, op.w_scale[o], op.y_scale);
    }
    const int64_t planes = x.shape[0] * g_.group;
    parallel_for(pool, planes, static_cast<double>(pixels * K * mult), [&](int64_t b, int64_t end) {
      std::vector<int16_t> plane(static_cast<size_t>(ph * pw));
      // Tap sums as int16 x int16 -> int32 (what SSE2 multiplies fast); |sum| <= K * 255^2
      // cannot overflow (kMaxDepthwiseTaps). The bias is added mod 2^32, as the reference does.
      std::vector<int32_t> acc(static_cast<size_t>(e.ow));
      for (int64_t i = b; i < end; ++i) {
        const int64_t n = i / g_.group, c = i % g_.group;
        const T* xc = px + i * e.H * e.W;
        std::fill(plane.begin(), plane.end(), int16_t{0});
        for (int64_t iy = 0; iy < e.H; ++iy)
          for (int64_t ix = 0; ix < e.W; ++ix)
            plane[(iy + e.pt) * pw + ix + e.pl] =
                static_cast<int16_t>(static_cast<int32_t>(xc[iy * e.W + ix]) - x_zp);
        for (int64_t m = 0; m < mult; ++m) {
          const int64_t o = c * mult + m;
          const int16_t* wo = wc_.data() + o * K;
          const uint32_t b0 = bias_.empty() ? 0u : static_cast<uint32_t>(bias_[o]);
          const int64_t out_base = (n * g_.oc + o) * pixels;
          for (int64_t oy = 0; oy < e.oh; ++oy) {
            int32_t* __restrict a = acc.data();
            std::fill(acc.begin(), acc.end(), 0);
            for (int64_t ky = 0; ky < g_.kh; ++ky) {
              const int16_t* row = plane.data() + (oy * g_.sh + ky * g_.dh) * pw;
              for (int64_t kx = 0; kx < g_.kw; ++kx) {
                const int16_t wv = wo[ky * g_.kw + kx];
                const int16_t* __restrict src = row + kx * g_.dw;
                if (g_.sw == 1) {
                  for (int64_t ox = 0; ox < e.ow; ++ox) a[ox] += src[ox] * wv;
                } else {
                  for (int64_t ox = 0; ox < e.ow; ++ox) a[ox] += src[ox * g_.sw] * wv;
                }
              }
            }
            for (int64_t ox = 0; ox < e.ow; ++ox)
              a[ox] = static_cast<int32_t>(static_cast<uint32_t>(a[ox]) + b0);
            if (!op.quantized) {
              std::memcpy(y.ptr<int32_t>() + out_base + oy * e.ow, a,
                          static_cast<size_t>(e.ow) * sizeof(int32_t));
            } else {
              requantize_row(a, e.ow, scale[o], op.y_zero_point, qlo, qhi, op.rounding,
                             static_cast<uint8_t*>(y.data) + out_base + oy * e.ow, signed_out);
            }
          }
        }
      }
    });
  }

  std::string op_;
  ConvGeometry g_;
  std::vector<int32_t> bias_, w_zp_;
  std::vector<int16_t> wc_;
  std::vector<std::shared_ptr<PackedQ8B>> packed_;
};

}  // namespace sliver::ops::q
