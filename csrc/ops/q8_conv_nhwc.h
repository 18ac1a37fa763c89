// 8-bit 2-D convolution on channels-last (NHWC) tensors, for sliver:QLinearConv with
// channels_last=1 (the layout pass qdq_nhwc puts whole integer conv stacks in this layout).
//
// Why channels-last. In NHWC the C values a filter tap reads are contiguous, and so are the OC
// values one output pixel gets: a dense conv is a GEMM whose A rows are the window's values and
// whose [pixels, OC] result is the output itself. The NCHW kernel (q8_conv.h) must transpose its
// input and scatter its output on every call, which costs more than the products for the small
// convolutions of mobile CNNs.
//
// Paths:
//  * dense: the input is widened once per call into a padded int16 image of x - x_zp (padding
//    zeros, so windows need no bounds checks and the zero point no correction term), and the
//    wconv kernels (ukernels/q8_conv/q8_wconv.h) read each window row's KW * C values straight
//    from it as int16 pairs, for 6 pixels x 16 channels per call. The same kernel serves 1x1
//    convs (one segment of C values) and first layers on 1-4 channels (K = 9-36: no gather,
//    no per-byte unpacking, nothing per call but the widening).
//  * gemm (large dense convs, see gemm_wins): the exact 8-bit GEMM of qgemm.h with the image's
//    windows as A rows, gathered (im2col) a few MR-row panels at a time per thread just before
//    the GEMM packs them, so no M x K matrix is built; a 1x1 stride-1 conv's input is A as it
//    is. Where the VNNI kernel needs no row sums (u8 input, weight zero points 0) it reads the
//    windows in place instead, one pointer per window row (WindowRows::segments), and only
//    windows across the left or right edge are gathered. The GEMM's epilogue requantizes and
//    writes the NHWC output.
//  * depthwise (multiplier 1): the tap-pair kernels (ukernels/q8_dwconv), one call per run of
//    interior pixels of an output row, border pixels one by one.
// All requantize exactly as requant.h's onnx_reference order, in the cheapest RequantForm the
// weights' accumulator bounds prove exact (q8_conv_pack.h, q8_requant_avx2.h); the per-call
// arrays are cached while the scales and zero points stay the same (they are constants).
//
// nchw_input=1 (set by qdq_nhwc at a region's entry when the conv is the input's only reader):
// X arrives NCHW; the widening reads it in that layout (dense), or a scratch transpose does
// (depthwise), instead of a graph Transpose.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ops/common.h"
#include "ops/q8_conv.h"
#include "ops/q8_conv_pack.h"
#include "ops/window_gather.h"
#include "ops/quant_util.h"
#include "sliver/qgemm.h"
#include "sliver/requant.h"
#include "ukernels/q8_dwconv/q8_dwconv.h"
#include "ukernels/q8_conv/q8_wconv.h"

namespace sliver::ops::q {

class NhwcQ8Conv {
 public:
  /// Whether this kernel handles geometry g: 2-D, dense or depthwise with multiplier 1.
  static bool supports(const ConvGeometry& g) {
    return g.spatial == 2 && (g.group == 1 || (g.cg == 1 && g.oc == g.group));
  }

  /// w: the constant weight [OC, Cg, KH, KW]; w_zp: 1 or OC values; bias: empty or OC values.
  NhwcQ8Conv(ConvGeometry g, const Tensor& w, const std::vector<int32_t>& w_zp,
             std::vector<int32_t> bias, bool nchw_input = false)
      : g_(std::move(g)), bias_(std::move(bias)), nchw_input_(nchw_input) {
    const int64_t oc = g_.oc, K = g_.k(), taps = g_.kh * g_.kw, cg = g_.cg;
    const uint8_t* pw = static_cast<const uint8_t*>(w.data);
    if (depthwise()) {  // [OC, 1, KH, KW] is already [channel][tap]
      dw_ = pack_dwconv_weights(pw, w.dtype, oc, taps, w_zp);
      return;
    }
    std::vector<uint8_t> perm(static_cast<size_t>(oc * K));  // [oc][ky][kx][c]
    for (int64_t o = 0; o < oc; ++o)
      for (int64_t c = 0; c < cg; ++c)
        for (int64_t t = 0; t < taps; ++t) perm[o * K + t * cg + c] = pw[o * K + c * taps + t];
    if (gemm_wins(false) || gemm_wins(true)) {
      auto packed = pack_q8_b(K, oc, perm.data(), w.dtype, K, /*trans_b=*/true, w_zp.data(),
                              w_zp.size() > 1);
      if (gemm_wins(packed->fast_panels * 4 >= packed->panels() * 3)) {
        gemm_ = std::move(packed);
        if (qgemm_native_exact()) q8_drop_pair_fixes(*gemm_);  // only the native kernels read it
        return;
      }
    }
    // A window row's KW * C values are one contiguous segment unless dilated.
    const bool merged = g_.dw == 1 || g_.kw == 1;
    wc_ = pack_wconv_weights(perm.data(), w.dtype, oc, merged ? g_.kh : taps,
                             merged ? g_.kw * cg : cg, w_zp);
  }

  bool depthwise() const { return g_.group > 1; }
  const ConvGeometry& geometry() const { return g_; }
  /// Bytes of the packed int16 weights.
  int64_t weight_bytes() const {
    if (depthwise()) return (dw_.channels + 15) / 16 * dw_.pairs * 32 * 2;
    if (gemm_) return gemm_->panels() * gemm_->kp * gemm_->nr;
    return wc_.panels() * wc_.panel_elems() * 2;
  }
  std::string describe() const {
    const std::string path = depthwise() ? "depthwise, tap pairs"
                             : gemm_     ? (pointwise() ? "1x1, q8 gemm" : "im2col, q8 gemm")
                             : pointwise() ? "1x1, int16 image, q8 wconv"
                                           : "int16 image, q8 wconv";
    return "native sliver:QLinearConv (nhwc " + path + (nchw_input_ ? ", nchw input)" : ")");
  }

  /// y[N, OH, OW, OC] = requantized conv of x[N, H, W, C] (x[N, C, H, W] with nchw_input),
  /// clamped to [qlo, qhi].
  void compute(ThreadPool* pool, const Tensor& x, int32_t x_zp, const ConvOutputParams& op,
               int32_t qlo, int32_t qhi, Tensor& y) const {
    if (!is_q8(x.dtype))
      fail("sliver:QLinearConv: X must be uint8 or int8, got ", dtype_name(x.dtype));
    const int64_t C = g_.cg * g_.group;
    const int ch_axis = nchw_input_ ? 1 : 3;
    if (x.rank() != 4 || x.shape[ch_axis] != C)
      fail("sliver:QLinearConv (channels last", nchw_input_ ? ", nchw input" : "", "): X ",
           shape_str(x.shape), " does not match ", C, " input channels");
    const int64_t N = x.shape[0], H = x.shape[nchw_input_ ? 2 : 1];
    const int64_t W = x.shape[nchw_input_ ? 3 : 2];
    Geo e{N, H, W, C, 0, 0, 0, 0};
    conv_dim(g_.auto_pad, H, g_.kh, g_.sh, g_.dh, g_.pads[0], g_.pads[2], &e.oh, &e.pt);
    conv_dim(g_.auto_pad, W, g_.kw, g_.sw, g_.dw, g_.pads[1], g_.pads[3], &e.ow, &e.pl);
    y = Tensor::empty(op.y_type, {N, e.oh, e.ow, g_.oc});
    if (y.numel() == 0) return;
    const uint8_t* px = static_cast<const uint8_t*>(x.data);
    std::vector<uint8_t> nhwc;
    if (nchw_input_ && (depthwise() || gemm_)) {
      nhwc.resize(static_cast<size_t>(N * H * W * C));
      to_nhwc(px, N, C, H * W, nhwc.data());
      px = nhwc.data();
    }
    if (gemm_) {
      gemm_path(pool, px, x.dtype, x_zp, op, qlo, qhi, e, static_cast<uint8_t*>(y.data));
      return;
    }
    const std::shared_ptr<const ConvRequantArrays> rq = requant_for(x.dtype, x_zp, op, qlo, qhi);
    if (depthwise()) {
      depthwise_path(pool, px, x.dtype, x_zp, rq->rq, e, static_cast<uint8_t*>(y.data));
    } else {
      wconv_path(pool, px, x.dtype, x_zp, rq->rq, e, static_cast<uint8_t*>(y.data));
    }
  }

 private:
  struct Geo {
    int64_t N, H, W, C, oh, ow, pt, pl;
  };

  static constexpr int64_t kVnniGemmMinK = 16, kVnniGemmMinKNchw = 64;

  bool pointwise() const {
    return g_.kh == 1 && g_.kw == 1 && g_.sh == 1 && g_.sw == 1 &&
           std::all_of(g_.pads.begin(), g_.pads.end(), [](int64_t p) { return p == 0; }) &&
           (g_.auto_pad == "NOTSET" || g_.auto_pad == "VALID");
  }

  // Whether the GEMM path (gemm_path) beats the int16 image for this dense conv, given whether
  // (at least 3/4 of) its weight panels are fast-safe. The exact GEMM kernel and the wconv both
  // run two multiply uops per 32 products on Zen 3 (vpmaddubsw + vpmaddwd against vpmaddwd on
  // int16 pairs), so neither wins on the products; what differs is the work around them. The
  // GEMM packs every A row (3 bytes per k for the exact kernel) once per task and reuses it
  // over OC / 16 weight panels, and its 4x16 tile keeps up as pixels get few; the wconv widens
  // the image once for all windows and finishes 6 pixels x 16 channels per call, but its block
  // setup is paid per 96 pixels and weight panel. On fast-safe panels (per-tensor weight
  // scales, with pair fixes) the GEMM's chain is ~20% cheaper and A packs at 1 byte per k.
  // Measured on the ResNet-18 / MobileNetV2 layer shapes at 224x224, one thread (GEMM time /
  // wconv time; `sliver profile` per node, both paths forced):
  //  * exact panels, 1x1 stride 1: 0.91-0.98 for K = 576-960, ~1.0 for K = 320-384, 1.1-1.5
  //    for K = 64-192, 1.85 for K = 32. Windows: 0.77-0.94 for K >= 1152 with OC >= 256
  //    (ResNet-18 stages 3-4), 1.0 at K = 576-1152 with OC = 128, 1.09 for 56x56 64 -> 64 3x3,
  //    1.05-1.4 for the stride-2 1x1 downsamples (K = 64-256).
  //  * fast panels: 1x1 0.74-0.90 for K = 320-960, 0.94-0.99 at K = 384 -> 64, 1.23-1.3 at
  //    K = 64, 1.5-2.5 for K = 16-32; windows 0.66-0.83 for K >= 1152 and the stride-2 3x3,
  //    0.93-1.03 for 56x56 64 -> 64 3x3; stride-2 1x1 0.80 at K = 256, 1.05 at 128, 1.46 at 64.
  // First layers reading NCHW (C = 1-4) stay on the wconv, which reads them in place.
  // With VNNI the GEMM runs 64 exact products per instruction against the wconv's 16, all its
  // panels are fast and it reads A in place (direct mode, K % 4 == 0): it wins from K = 16 on
  // (first layers reading NCHW, which need a transpose, a gather and packing, from K = 64)
  // (MobileNetV2 / ResNet-18 QDQ, 1 thread, Xeon with AVX-512 VNNI, GEMM / wconv time per
  // node: 1x1 K = 16 0.72, K = 24-32 0.6, K = 64-144 0.65-0.8, K >= 576 windows 0.4-0.45,
  // stems K = 27 1.8 and K = 147 0.85; smaller K was not measured).
  bool gemm_wins(bool fast_panels) const {
    if (g_.group != 1) return false;
    if (qgemm_native_exact()) return g_.k() >= (nchw_input_ ? kVnniGemmMinKNchw : kVnniGemmMinK);
    if (nchw_input_) return false;
    const bool one_by_one = g_.kh == 1 && g_.kw == 1;
    if (fast_panels) return g_.k() >= (one_by_one ? 256 : 576);
    if (pointwise()) return g_.k() >= 512;
    return g_.k() >= 1024 && g_.oc >= 256;
  }

  // [N][C][HW] -> [N][HW][C]; few channels (first layers) in a loop the compiler unrolls.
  template <int kC>
  static void interleave(const uint8_t* __restrict src, int64_t hw, uint8_t* __restrict dst) {
    for (int64_t p = 0; p < hw; ++p)
      for (int c = 0; c < kC; ++c) dst[p * kC + c] = src[c * hw + p];
  }
  static void to_nhwc(const uint8_t* src, int64_t N, int64_t C, int64_t hw, uint8_t* dst) {
    for (int64_t n = 0; n < N; ++n, src += C * hw, dst += C * hw) {
      switch (C) {
        case 1: std::memcpy(dst, src, static_cast<size_t>(hw)); break;
        case 2: interleave<2>(src, hw, dst); break;
        case 3: interleave<3>(src, hw, dst); break;
        case 4: interleave<4>(src, hw, dst); break;
        default: transpose_block(src, C, hw, hw, dst, C);
      }
    }
  }

  // The per-call requantization arrays, rebuilt only when a parameter changes (they are
  // constants in every real model; the bound checks cost more than a small conv).
  std::shared_ptr<const ConvRequantArrays> requant_for(DType x_type, int32_t x_zp,
                                                       const ConvOutputParams& op, int32_t qlo,
                                                       int32_t qhi) const {
    const bool dw = depthwise();
    const int32_t offset = dw ? x_zp : 0;  // the widened image already holds x - x_zp
    {
      std::lock_guard<std::mutex> lock(cache_->mu);
      if (cache_->arrays && cache_->key.matches(x_type, x_zp, op, qlo, qhi)) return cache_->arrays;
    }
    Key key{x_type, x_zp, op.x_scale, op.y_scale, op.y_zero_point, op.y_type, qlo, qhi, op.w_scale};
    auto arrays = std::make_shared<ConvRequantArrays>();
    prepare_conv_requant(g_.oc, dw ? dw_.colsum : wc_.colsum, dw ? dw_.abssum : wc_.abssum, bias_,
                         x_type, x_zp, offset, op.x_scale, op.w_scale, op.y_scale, op.y_zero_point,
                         op.y_type, qlo, qhi, arrays.get());
    if (!dw) to_wconv_slots(g_.oc, arrays.get());
    std::lock_guard<std::mutex> lock(cache_->mu);
    cache_->key = std::move(key);
    cache_->arrays = arrays;
    return arrays;
  }

  // Position of output pixel r: image, row, column.
  struct Pixel {
    int64_t n, oy, ox;
    void next(const Geo& e) {
      if (++ox < e.ow) return;
      ox = 0;
      if (++oy < e.oh) return;
      oy = 0;
      ++n;
    }
  };

  // The calling thread's widened image, reused across calls (no page faults per call).
  static int16_t* scratch(size_t n) {
    thread_local std::vector<int16_t> buf;
    if (buf.size() < n) buf.resize(n);
    return buf.data();
  }

  // Padded row r of image n of the widened image: x - x_zp, zeros outside the input.
  void widen_row(const Q8WconvKernel& k, const uint8_t* x, bool signed_x, int32_t x_zp,
                 const Geo& e, int64_t wp, int64_t n, int64_t iy, int16_t* dst) const {
    const int64_t C = e.C, qa = std::clamp<int64_t>(e.pl, 0, wp);
    const int64_t qb = std::clamp<int64_t>(e.W + e.pl, qa, wp);  // [qa, qb): inside the input
    if (iy < 0 || iy >= e.H || qa == qb) {
      std::memset(dst, 0, static_cast<size_t>(wp * C) * 2);
      return;
    }
    std::memset(dst, 0, static_cast<size_t>(qa * C) * 2);
    std::memset(dst + qb * C, 0, static_cast<size_t>((wp - qb) * C) * 2);
    const int64_t ix0 = qa - e.pl;
    if (nchw_input_) {
      k.widen(x + n * C * e.H * e.W + iy * e.W + ix0, qb - qa, C, e.H * e.W, signed_x, x_zp,
              dst + qa * C);
    } else {
      k.widen(x + ((n * e.H + iy) * e.W + ix0) * C, qb - qa, C, 0, signed_x, x_zp, dst + qa * C);
    }
  }

  void wconv_path(ThreadPool* pool, const uint8_t* x, DType x_type, int32_t x_zp,
                  const Q8ConvRequant& rq, const Geo& e, uint8_t* y) const {
    // Blocks of 16 tiles (96 pixels) per kernel call and panel: a panel's weights stay in L1
    // while the block's pixels pass, and the kernel's setup is paid once per block.
    constexpr int64_t kMR = kQ8WconvMR, kBlock = 16;
    const int64_t C = e.C, oc = g_.oc, panels_n = wc_.panels();
    const int64_t sh = g_.sh, sw = g_.sw;
    // The padded image spans exactly the rows and columns the windows read.
    const int64_t hp = (e.oh - 1) * sh + (g_.kh - 1) * g_.dh + 1;
    const int64_t wp = (e.ow - 1) * sw + (g_.kw - 1) * g_.dw + 1;
    const int64_t img = hp * wp * C;
    const Q8WconvKernel& k = q8_wconv_kernel();
    // Slack: an odd segment reads one value past the last window's row.
    int16_t* xw = scratch(static_cast<size_t>(e.N * img + 16));
    std::memset(xw + e.N * img, 0, 16 * 2);
    const bool signed_x = x_type == DType::i8;
    parallel_for(pool, e.N * hp, static_cast<double>(wp * C), [&](int64_t b, int64_t end) {
      for (int64_t r = b; r < end; ++r)
        widen_row(k, x, signed_x, x_zp, e, wp, r / hp, r % hp - e.pt, xw + r * wp * C);
    });
    // Each pair's offset from a pixel's base: segment (window row, or tap when dilated), then
    // pair.
    std::vector<int64_t> pair_off;
    pair_off.reserve(static_cast<size_t>(wc_.nseg * wc_.pairs));
    const bool row_segments = wc_.nseg == g_.kh;  // else one per tap (dilated rows)
    for (int64_t s = 0; s < wc_.nseg; ++s) {
      const int64_t ky = row_segments ? s : s / g_.kw, kx = row_segments ? 0 : s % g_.kw;
      for (int64_t q = 0; q < wc_.pairs; ++q)
        pair_off.push_back((ky * g_.dh * wp + kx * g_.dw) * C + 2 * q);
    }
    const int64_t rows = e.N * e.oh * e.ow, tiles = (rows + kMR - 1) / kMR;
    const double cost = static_cast<double>(kMR * oc * static_cast<int64_t>(pair_off.size()) * 2);
    parallel_for(pool, tiles, cost, [&](int64_t b, int64_t end) {
      const int16_t* px[kBlock * kMR];
      Q8WconvBlock a;
      a.pair_off = pair_off.data();
      a.npairs = static_cast<int64_t>(pair_off.size());
      a.rq = &rq;
      a.ldy = oc;
      Pixel p{b * kMR / (e.oh * e.ow), b * kMR / e.ow % e.oh, b * kMR % e.ow};
      for (int64_t r0 = b * kMR; r0 < std::min(rows, end * kMR); r0 += kBlock * kMR) {
        a.pixels = std::min({kBlock * kMR, rows - r0, end * kMR - r0});
        for (int64_t i = 0; i < a.pixels; ++i, p.next(e))
          px[i] = xw + p.n * img + (p.oy * sh * wp + p.ox * sw) * C;
        a.px = px;
        for (int64_t pn = 0; pn < panels_n; ++pn) {
          a.n0 = pn * 16;
          a.nc = std::min<int64_t>(16, oc - a.n0);
          a.b = wc_.panel(pn);
          a.y = y + r0 * oc + a.n0;
          k.fn(a);
        }
      }
    });
  }

  // The windows of output pixels as GEMM rows (im2col): K = KH * KW * C bytes per row in the
  // weights' [ky][kx][c] order, taps outside the image filled with the zero point (so they add
  // x - x_zp = 0, exactly like the reference's padding). In NHWC a window row without dilation is
  // one run of KW * C bytes, so an interior pixel is KH copies.
  class WindowRows final : public QGemmRowSource {
   public:
    WindowRows(const ConvGeometry& g, const Geo& e, const uint8_t* x, uint8_t pad)
        : g_(g), e_(e), x_(x), pad_(pad), pad_run_(static_cast<size_t>(g.kw * e.C), pad) {}
    // Without dilation a window row's KW * C bytes are one run in the image: one pointer per
    // window row (one per tap with dilation). Rows above or below the image read a run of zero
    // points; windows across the left or right edge are gathered into the spill.
    int64_t segment_bytes() const override { return g_.dw == 1 ? g_.kw * e_.C : e_.C; }
    void segments(int64_t m0, int64_t count, const uint8_t** ptrs, int64_t stride,
                  uint8_t* spill) const override {
      const ConvGeometry& g = g_;
      const Geo& e = e_;
      const int64_t C = e.C, last_x = (g.kw - 1) * g.dw, K = g.kh * g.kw * C;
      const int64_t run = segment_bytes(), per_row = run == C ? g.kw : 1;
      Pixel p{m0 / (e.oh * e.ow), m0 / e.ow % e.oh, m0 % e.ow};
      for (int64_t i = 0; i < count; ++i, p.next(e)) {
        const uint8_t* img = x_ + p.n * e.H * e.W * C;
        const int64_t iy0 = p.oy * g.sh - e.pt, ix0 = p.ox * g.sw - e.pl;
        if (ix0 < 0 || ix0 + last_x >= e.W) {  // across the left or right edge
          rows(m0 + i, 1, spill + i * K, K);
          for (int64_t s = 0; s < g.kh * per_row; ++s) ptrs[s * stride + i] = spill + i * K + s * run;
          continue;
        }
        for (int64_t ky = 0, s = 0; ky < g.kh; ++ky) {
          const int64_t iy = iy0 + ky * g.dh;
          const bool in = iy >= 0 && iy < e.H;
          const uint8_t* at = img + (iy * e.W + ix0) * C;
          for (int64_t kx = 0; kx < per_row; ++kx, ++s)
            ptrs[s * stride + i] = in ? at + kx * g.dw * C : pad_run_.data();
        }
      }
    }
    void rows(int64_t m0, int64_t count, uint8_t* rows_dst, int64_t ld) const override {
      const ConvGeometry& g = g_;
      const Geo& e = e_;
      const int64_t C = e.C, run = g.kw * C, last_x = (g.kw - 1) * g.dw;
      Pixel p{m0 / (e.oh * e.ow), m0 / e.ow % e.oh, m0 % e.ow};
      for (int64_t i = 0; i < count; ++i, p.next(e)) {
        uint8_t* dst = rows_dst + i * ld;
        const uint8_t* img = x_ + p.n * e.H * e.W * C;
        const int64_t iy0 = p.oy * g.sh - e.pt, ix0 = p.ox * g.sw - e.pl;
        const bool one_run = g.dw == 1 && ix0 >= 0 && ix0 + last_x < e.W;
        for (int64_t ky = 0; ky < g.kh; ++ky, dst += run) {
          const int64_t iy = iy0 + ky * g.dh;
          if (iy < 0 || iy >= e.H) {
            std::memset(dst, pad_, static_cast<size_t>(run));
          } else if (one_run) {
            copy_run(dst, img + (iy * e.W + ix0) * C, run);  // inline: no call per run
          } else {
            for (int64_t kx = 0; kx < g.kw; ++kx) {
              const int64_t ix = ix0 + kx * g.dw;
              if (ix < 0 || ix >= e.W) {
                std::memset(dst + kx * C, pad_, static_cast<size_t>(C));
              } else {
                copy_run(dst + kx * C, img + (iy * e.W + ix) * C, C);
              }
            }
          }
        }
      }
    }

   private:
    const ConvGeometry& g_;
    const Geo& e_;
    const uint8_t* x_;
    uint8_t pad_;
    std::vector<uint8_t> pad_run_;
  };

  // The exact 8-bit GEMM (qgemm.h) on the windows: the zero points as row and column
  // corrections, requantized NHWC output written by the GEMM's epilogue. A 1x1 stride-1 conv's
  // NHWC input already is A.
  void gemm_path(ThreadPool* pool, const uint8_t* x, DType x_type, int32_t x_zp,
                 const ConvOutputParams& op, int32_t qlo, int32_t qhi, const Geo& e,
                 uint8_t* y) const {
    const WindowRows windows(g_, e, x, static_cast<uint8_t>(x_zp));
    QGemmArgs a;
    a.M = e.N * e.oh * e.ow;
    if (pointwise()) {
      a.a = x;
      a.lda = e.C;
    } else {
      a.a_rows = &windows;
    }
    a.a_type = x_type;
    a.a_zero_point = x_zp;
    a.output = QGemmOutput::quantized;
    a.c = y;
    a.ldc = g_.oc;
    a.bias = bias_.empty() ? nullptr : bias_.data();
    a.a_scale = op.x_scale;
    a.b_scale = op.w_scale.data();
    a.b_scale_per_column = true;
    a.y_scale = op.y_scale;
    a.y_zero_point = op.y_zero_point;
    a.y_type = op.y_type;
    a.qmin = qlo;
    a.qmax = qhi;
    a.rounding = op.rounding;
    qgemm(a, *gemm_, pool);
  }

  void depthwise_path(ThreadPool* pool, const uint8_t* x, DType x_type, int32_t x_zp,
                      const Q8ConvRequant& rq, const Geo& e, uint8_t* y) const {
    const int64_t C = e.C, taps = g_.kh * g_.kw, pairs = dw_.pairs;
    const int64_t kh = g_.kh, kw = g_.kw, sh = g_.sh, sw = g_.sw, dh = g_.dh, dw = g_.dw;
    const int64_t H = e.H, W = e.W, oh = e.oh, ow = e.ow, pt = e.pt, pl = e.pl;
    // Zero-point rows for taps outside the image; long enough that a run of pixels may keep
    // advancing through it (a padded row of the window stays padded along the output row).
    const std::vector<uint8_t> pad(static_cast<size_t>((ow * sw + kw * dw + 1) * C + 64),
                                   static_cast<uint8_t>(x_zp));
    const uint8_t* pad_row = pad.data();
    // Output pixels whose window lies inside the image horizontally: [ox_lo, ox_hi).
    const int64_t ox_lo = std::min(ow, (pl + sw - 1) / sw);
    const int64_t ox_hi =
        std::max(ox_lo, std::min(ow, W - 1 - (kw - 1) * dw + pl >= 0
                                         ? (W - 1 - (kw - 1) * dw + pl) / sw + 1
                                         : int64_t{0}));
    const Q8DwconvFn fn = q8_dwconv_kernel(x_type == DType::i8).fn;
    const int16_t* wp = dw_.data.get();
    parallel_for(pool, e.N * oh, static_cast<double>(ow * C * taps), [&](int64_t b, int64_t end) {
      std::vector<const uint8_t*> tap(static_cast<size_t>(2 * pairs));
      std::vector<const uint8_t*> rows(static_cast<size_t>(kh));
      Q8DwconvArgs a;
      a.channels = C;
      a.pairs = pairs;
      a.taps = tap.data();
      a.w = wp;
      a.rq = &rq;
      // One output pixel with per-tap bounds checks (the horizontal borders).
      auto border = [&](int64_t ox, uint8_t* yrow) {
        const int64_t ix0 = ox * sw - pl;
        for (int64_t ky = 0; ky < kh; ++ky)
          for (int64_t kx = 0; kx < kw; ++kx) {
            const int64_t ix = ix0 + kx * dw;
            tap[ky * kw + kx] = rows[ky] && ix >= 0 && ix < W ? rows[ky] + ix * C : pad_row;
          }
        for (int64_t t = taps; t < 2 * pairs; ++t) tap[t] = tap[0];  // weight 0
        a.pixels = 1;
        a.step = 0;
        a.y = yrow + ox * C;
        fn(a);
      };
      for (int64_t r = b; r < end; ++r) {
        const int64_t n = r / oh, oy = r % oh;
        const uint8_t* img = x + n * H * W * C;
        for (int64_t ky = 0; ky < kh; ++ky) {  // input rows of this output row, or none
          const int64_t iy = oy * sh - pt + ky * dh;
          rows[ky] = iy >= 0 && iy < H ? img + iy * W * C : nullptr;
        }
        uint8_t* yrow = y + r * ow * C;
        for (int64_t ox = 0; ox < ox_lo; ++ox) border(ox, yrow);
        if (ox_lo < ox_hi) {
          const int64_t ix0 = ox_lo * sw - pl;
          for (int64_t ky = 0; ky < kh; ++ky)
            for (int64_t kx = 0; kx < kw; ++kx)
              tap[ky * kw + kx] = rows[ky] ? rows[ky] + (ix0 + kx * dw) * C : pad_row;
          for (int64_t t = taps; t < 2 * pairs; ++t) tap[t] = tap[0];
          a.pixels = ox_hi - ox_lo;
          a.step = sw * C;
          a.y = yrow + ox_lo * C;
          fn(a);
        }
        for (int64_t ox = ox_hi; ox < ow; ++ox) border(ox, yrow);
      }
    });
  }

  struct Key {
    DType x_type = DType::undefined;
    int32_t x_zp = 0;
    float x_scale = 0, y_scale = 0;
    int32_t y_zp = 0;
    DType y_type = DType::undefined;
    int32_t qlo = 0, qhi = 0;
    std::vector<float> w_scale;
    bool matches(DType xt, int32_t xz, const ConvOutputParams& op, int32_t lo, int32_t hi) const {
      // Scales compare by bits: a NaN scale must still hit its own entry.
      auto same = [](float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; };
      return x_type == xt && x_zp == xz && same(x_scale, op.x_scale) &&
             same(y_scale, op.y_scale) && y_zp == op.y_zero_point && y_type == op.y_type &&
             qlo == lo && qhi == hi && w_scale.size() == op.w_scale.size() &&
             std::memcmp(w_scale.data(), op.w_scale.data(), w_scale.size() * sizeof(float)) == 0;
    }
  };
  struct Cache {
    std::mutex mu;
    Key key;
    std::shared_ptr<const ConvRequantArrays> arrays;
  };

  ConvGeometry g_;
  std::vector<int32_t> bias_;
  bool nchw_input_ = false;
  WconvWeights wc_;
  std::shared_ptr<PackedQ8B> gemm_;  // set: the GEMM path runs this conv (wc_ stays empty)
  DwconvWeights dw_;
  std::shared_ptr<Cache> cache_ = std::make_shared<Cache>();  // shared_ptr: the class is moved
};

}  // namespace sliver::ops::q
