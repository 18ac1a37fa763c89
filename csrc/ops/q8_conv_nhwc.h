// 8-bit 2-D convolution on channels-last (NHWC) tensors, for sliver:QLinearConv with
// channels_last=1 (the layout pass qdq_nhwc puts whole integer conv stacks in this layout).
//
// Why channels-last. In NHWC the C values a filter tap reads are contiguous, and so are the OC
// values one output pixel gets: the GEMM's A rows are gathered with one copy per (pixel, filter
// row) (kw * C bytes), a 1x1 stride-1 conv needs no gather at all (the image is A), and the
// GEMM writes [pixels, OC] straight into the output. The NCHW kernel (q8_conv.h) must transpose
// its input and scatter its output on every call, which costs more than the products for the
// small convolutions of mobile CNNs.
//
// Dense convs (group 1) run the exact int8 GEMM (qgemm.h) on pixel tiles; depthwise convs (one
// input channel per group, multiplier 1) run a direct loop vectorised across channels, with
// the same exact int32 sums and the same requantization (requant.h, onnx_reference order):
// m[c] = float32(float32(x_scale * w_scale[c]) / y_scale), y = clamp(rne(acc * m[c] + zp)), one
// output pixel per micro-kernel call (ukernels/q8_dwconv).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ops/common.h"
#include "ops/q8_conv.h"
#include "ops/quant_util.h"
#include "sliver/qgemm.h"
#include "sliver/requant.h"
#include "ukernels/q8_dwconv/q8_dwconv.h"

namespace sliver::ops::q {

class NhwcQ8Conv {
 public:
  /// Whether this kernel handles geometry g: 2-D, dense or depthwise with multiplier 1.
  static bool supports(const ConvGeometry& g) {
    return g.spatial == 2 && (g.group == 1 || (g.cg == 1 && g.oc == g.group));
  }

  /// w: the constant weight [OC, Cg, KH, KW]; w_zp: 1 or OC values; bias: empty or OC values.
  NhwcQ8Conv(ConvGeometry g, const Tensor& w, const std::vector<int32_t>& w_zp,
             std::vector<int32_t> bias)
      : g_(std::move(g)), bias_(std::move(bias)) {
    const int64_t oc = g_.oc, K = g_.k(), taps = g_.kh * g_.kw, cg = g_.cg;
    if (bias_.empty()) bias_.assign(static_cast<size_t>(oc), 0);
    const uint8_t* pw = static_cast<const uint8_t*>(w.data);
    auto code = [&](int64_t i) {
      return w.dtype == DType::u8 ? int32_t{pw[i]} : int32_t{static_cast<int8_t>(pw[i])};
    };
    if (depthwise()) {
      wc_.resize(static_cast<size_t>(taps * oc));  // [tap][c] = w - zp
      for (int64_t c = 0; c < oc; ++c)
        for (int64_t t = 0; t < taps; ++t)
          wc_[t * oc + c] = code(c * taps + t) - w_zp[w_zp.size() == 1 ? 0 : c];
      return;
    }
    std::vector<uint8_t> perm(static_cast<size_t>(oc * K));  // [oc][ky][kx][c]
    for (int64_t o = 0; o < oc; ++o)
      for (int64_t c = 0; c < cg; ++c)
        for (int64_t t = 0; t < taps; ++t) perm[o * K + t * cg + c] = pw[o * K + c * taps + t];
    packed_ = pack_q8_b(K, oc, perm.data(), w.dtype, K, /*trans_b=*/true, w_zp.data(),
                        w_zp.size() > 1);
  }

  bool depthwise() const { return g_.group > 1; }
  const ConvGeometry& geometry() const { return g_; }
  std::string describe() const {
    return depthwise() ? "native sliver:QLinearConv (nhwc depthwise direct)"
                       : pointwise() ? "native sliver:QLinearConv (nhwc 1x1, q8 gemm)"
                                     : "native sliver:QLinearConv (nhwc im2row + q8 gemm)";
  }

  /// y[N, OH, OW, OC] = requantized conv of x[N, H, W, C], clamped to [qlo, qhi].
  void compute(ThreadPool* pool, const Tensor& x, int32_t x_zp, const ConvOutputParams& op,
               int32_t qlo, int32_t qhi, Tensor& y) const {
    if (!is_q8(x.dtype)) fail("sliver:QLinearConv: X must be uint8 or int8, got ", dtype_name(x.dtype));
    if (x.rank() != 4 || x.shape[3] != g_.cg * g_.group)
      fail("sliver:QLinearConv (channels last): X ", shape_str(x.shape), " does not match ",
           g_.cg * g_.group, " input channels");
    const int64_t H = x.shape[1], W = x.shape[2];
    Geo e{H, W, 0, 0, 0, 0};
    conv_dim(g_.auto_pad, H, g_.kh, g_.sh, g_.dh, g_.pads[0], g_.pads[2], &e.oh, &e.pt);
    conv_dim(g_.auto_pad, W, g_.kw, g_.sw, g_.dw, g_.pads[1], g_.pads[3], &e.ow, &e.pl);
    y = Tensor::empty(op.y_type, {x.shape[0], e.oh, e.ow, g_.oc});
    if (y.numel() == 0) return;
    if (depthwise()) {
      depthwise_path(pool, x, x_zp, op, qlo, qhi, e, y);
      return;
    }
    gemm_path(pool, x, x_zp, op, qlo, qhi, e, y);
  }

 private:
  struct Geo {
    int64_t H, W, oh, ow, pt, pl;
  };

  bool pointwise() const {
    return g_.kh == 1 && g_.kw == 1 && g_.sh == 1 && g_.sw == 1 &&
           std::all_of(g_.pads.begin(), g_.pads.end(), [](int64_t p) { return p == 0; }) &&
           (g_.auto_pad == "NOTSET" || g_.auto_pad == "VALID");
  }

  // n bytes; a plain loop below 16 (a library call per few bytes costs more than the copy).
  static void copy_bytes(uint8_t* __restrict dst, const uint8_t* __restrict src, int64_t n) {
    if (n >= 16) {
      std::memcpy(dst, src, static_cast<size_t>(n));
    } else {
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
    }
  }
  static void fill_bytes(uint8_t* dst, uint8_t v, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = v;
  }

  // Receptive-field rows of output pixels [r0, r1) (r = (n * oh + oy) * ow + ox) into a.
  void im2row(const uint8_t* x, const Geo& e, int64_t r0, int64_t r1, uint8_t pad,
              uint8_t* a) const {
    // Locals: stores through uint8_t* may alias the members, which would be reloaded per byte.
    const int64_t C = g_.cg, K = g_.k(), kh = g_.kh, kw = g_.kw, row = kw * C;
    const int64_t sh = g_.sh, sw = g_.sw, dh = g_.dh, dw = g_.dw;
    const int64_t H = e.H, W = e.W, oh = e.oh, ow = e.ow, pt = e.pt, pl = e.pl;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t ox = r % ow, oy = (r / ow) % oh, n = r / (ow * oh);
      const uint8_t* img = x + n * H * W * C;
      uint8_t* dst = a + (r - r0) * K;
      const int64_t ix0 = ox * sw - pl;
      const bool inside_x = ix0 >= 0 && ix0 + (kw - 1) * dw < W;
      for (int64_t ky = 0; ky < kh; ++ky, dst += row) {
        const int64_t iy = oy * sh - pt + ky * dh;
        if (iy < 0 || iy >= H) {
          fill_bytes(dst, pad, row);
          continue;
        }
        const uint8_t* src = img + (iy * W + ix0) * C;
        if (inside_x && dw == 1) {
          copy_bytes(dst, src, row);
          continue;
        }
        for (int64_t kx = 0; kx < kw; ++kx) {
          const int64_t ix = ix0 + kx * dw;
          if (ix < 0 || ix >= W) {
            fill_bytes(dst + kx * C, pad, C);
          } else {
            copy_bytes(dst + kx * C, src + kx * dw * C, C);
          }
        }
      }
    }
  }

  void gemm_path(ThreadPool* pool, const Tensor& x, int32_t x_zp, const ConvOutputParams& op,
                 int32_t qlo, int32_t qhi, const Geo& e, Tensor& y) const {
    const int64_t K = g_.k(), rows = x.shape[0] * e.oh * e.ow;
    QGemmArgs args;
    args.a_type = x.dtype;
    args.a_zero_point = x_zp;
    args.ldc = g_.oc;
    args.bias = bias_.data();
    args.output = QGemmOutput::quantized;
    args.a_scale = op.x_scale;
    args.b_scale = op.w_scale.data();
    args.b_scale_per_column = true;
    args.y_scale = op.y_scale;
    args.y_zero_point = op.y_zero_point;
    args.y_type = op.y_type;
    args.qmin = qlo;
    args.qmax = qhi;
    args.rounding = RequantRounding::onnx_reference;
    uint8_t* py = static_cast<uint8_t*>(y.data);
    const uint8_t* px = static_cast<const uint8_t*>(x.data);
    if (pointwise()) {  // the image is A
      args.M = rows;
      args.a = px;
      args.lda = K;
      args.c = py;
      qgemm(args, *packed_, pool);
      return;
    }
    // Tiles of output pixels keep the gathered rows (~256 KiB) in L2 for the GEMM.
    const int64_t tile = std::min(rows, std::max<int64_t>(16, (256 << 10) / std::max<int64_t>(K, 1)));
    std::vector<uint8_t> a(static_cast<size_t>(tile * K));
    const uint8_t pad = static_cast<uint8_t>(x_zp);
    for (int64_t r0 = 0; r0 < rows; r0 += tile) {
      const int64_t r1 = std::min(rows, r0 + tile);
      parallel_for(pool, r1 - r0, static_cast<double>(K), [&](int64_t b, int64_t end) {
        im2row(px, e, r0 + b, r0 + end, pad, a.data() + b * K);
      });
      args.M = r1 - r0;
      args.a = a.data();
      args.lda = K;
      args.c = py + r0 * g_.oc;
      qgemm(args, *packed_, pool);
    }
  }

  void depthwise_path(ThreadPool* pool, const Tensor& x, int32_t x_zp, const ConvOutputParams& op,
                      int32_t qlo, int32_t qhi, const Geo& e, Tensor& y) const {
    const int64_t C = g_.oc, taps = g_.kh * g_.kw;
    std::vector<double> multiplier(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c)
      multiplier[c] = requant_multiplier(op.x_scale, op.w_scale[c], op.y_scale);
    Q8DwconvParams p;
    p.x_zero_point = x_zp;
    p.multiplier = multiplier.data();
    p.y_zero_point = op.y_zero_point;
    p.lo = qlo;
    p.hi = qhi;
    p.signed_out = op.y_type == DType::i8;
    const Q8DwconvKernel& kernel = q8_dwconv_kernel(x.dtype == DType::i8);
    // Taps outside the image read a row of zero-point codes: (x_zp - x_zp) * w = 0.
    const std::vector<uint8_t> pad(static_cast<size_t>(C), static_cast<uint8_t>(x_zp));
    const uint8_t* px = static_cast<const uint8_t*>(x.data);
    uint8_t* py = static_cast<uint8_t*>(y.data);
    const int64_t out_rows = x.shape[0] * e.oh;
    // Geometry in locals: the tap pointers are stored through memory the compiler would
    // otherwise have to assume aliases the members, reloading them in the inner loops.
    const int64_t kh = g_.kh, kw = g_.kw, sh = g_.sh, sw = g_.sw, dh = g_.dh, dw = g_.dw;
    const int64_t H = e.H, W = e.W, oh = e.oh, ow = e.ow, pt = e.pt, pl = e.pl;
    const int32_t* wc = wc_.data();
    const int32_t* bias = bias_.data();
    const uint8_t* pad_row = pad.data();
    const Q8DwconvFn fn = kernel.fn;
    parallel_for(pool, out_rows, static_cast<double>(ow * C * taps), [&](int64_t b, int64_t end) {
      std::vector<const void*> tap(static_cast<size_t>(taps));
      std::vector<const uint8_t*> rows(static_cast<size_t>(kh));
      for (int64_t r = b; r < end; ++r) {
        const int64_t n = r / oh, oy = r % oh;
        const uint8_t* img = px + n * H * W * C;
        for (int64_t ky = 0; ky < kh; ++ky) {  // input rows of this output row, or none
          const int64_t iy = oy * sh - pt + ky * dh;
          rows[ky] = iy >= 0 && iy < H ? img + iy * W * C : nullptr;
        }
        uint8_t* yrow = py + r * ow * C;
        for (int64_t ox = 0; ox < ow; ++ox) {
          const int64_t ix0 = ox * sw - pl;
          const bool inside_x = ix0 >= 0 && ix0 + (kw - 1) * dw < W;
          for (int64_t ky = 0; ky < kh; ++ky) {
            const uint8_t* row = rows[ky];
            const void** t = tap.data() + ky * kw;
            if (row && inside_x) {
              for (int64_t kx = 0; kx < kw; ++kx) t[kx] = row + (ix0 + kx * dw) * C;
              continue;
            }
            for (int64_t kx = 0; kx < kw; ++kx) {
              const int64_t ix = ix0 + kx * dw;
              t[kx] = row && ix >= 0 && ix < W ? row + ix * C : pad_row;
            }
          }
          fn(C, static_cast<int>(taps), tap.data(), wc, bias, p, yrow + ox * C);
        }
      }
    });
  }

  ConvGeometry g_;
  std::vector<int32_t> bias_;
  std::vector<int32_t> wc_;  // depthwise: [tap][c] = w - w_zp
  std::shared_ptr<PackedQ8B> packed_;
};

}  // namespace sliver::ops::q
