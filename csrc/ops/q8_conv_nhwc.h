// 8-bit 2-D convolution on channels-last (NHWC) tensors, for sliver:QLinearConv with
// channels_last=1 (the layout pass qdq_nhwc puts whole integer conv stacks in this layout).
//
// Why channels-last. In NHWC the C values a filter tap reads are contiguous, and so are the OC
// values one output pixel gets: a dense conv is a GEMM whose A rows are the taps' C-byte rows
// of the image, which the indirect-GEMM kernels (ukernels/q8_gemm/q8_igemm.h) read in place
// through one pointer per (tap, pixel) -- no im2row copy, no packing of A, the window's padding
// a row of zero-point codes -- and whose [pixels, OC] result is the output itself. The NCHW
// kernel (q8_conv.h) must transpose its input and scatter its output on every call, which costs
// more than the products for the small convolutions of mobile CNNs.
//
// Paths:
//  * dense, C >= 8 or C a multiple of 4: igemm on per-tap row pointers (1x1 convs: the rows);
//  * dense, fewer channels (a first layer on 1-3 colour planes): the K = KH*KW*C bytes of 6
//    pixels are gathered into a small buffer that stays in L1, then the same kernel (one tap);
//  * depthwise (multiplier 1): the tap-pair kernels (ukernels/q8_dwconv), one call per run of
//    interior pixels of an output row, border pixels one by one.
// All requantize exactly as requant.h's onnx_reference order, in the cheapest RequantForm the
// weights' accumulator bounds prove exact (q8_conv_pack.h, q8_requant_avx2.h); the per-call
// arrays are cached while the scales and zero points stay the same (they are constants).
//
// nchw_input=1 (set by qdq_nhwc at a region's entry when the conv is the input's only reader):
// X arrives NCHW and is transposed here, into a scratch copy, instead of by a graph Transpose.
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
#include "ops/quant_util.h"
#include "sliver/requant.h"
#include "ukernels/q8_dwconv/q8_dwconv.h"
#include "ukernels/q8_gemm/q8_igemm.h"

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
    gather_ = !(cg >= 8 || cg % 4 == 0);
    ig_ = gather_
              ? pack_igemm_weights(perm.data(), w.dtype, oc, 1, K, std::max<int64_t>(K, 4), w_zp)
              : pack_igemm_weights(perm.data(), w.dtype, oc, taps, cg, cg, w_zp);
  }

  bool depthwise() const { return g_.group > 1; }
  const ConvGeometry& geometry() const { return g_; }
  /// Bytes of the packed int16 weights.
  int64_t weight_bytes() const {
    if (depthwise()) return (dw_.channels + 15) / 16 * dw_.pairs * 32 * 2;
    return ig_.panels() * ig_.panel_elems() * 2;
  }
  std::string describe() const {
    const std::string path = depthwise() ? "depthwise, tap pairs"
                             : gather_   ? "gather + q8 igemm"
                             : pointwise() ? "1x1, q8 igemm"
                                           : "q8 igemm";
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
    if (nchw_input_) {
      nhwc.resize(static_cast<size_t>(N * H * W * C));
      to_nhwc(px, N, C, H * W, nhwc.data());
      px = nhwc.data();
    }
    const std::shared_ptr<const ConvRequantArrays> rq = requant_for(x.dtype, x_zp, op, qlo, qhi);
    if (depthwise()) {
      depthwise_path(pool, px, x.dtype, x_zp, rq->rq, e, static_cast<uint8_t*>(y.data));
    } else {
      igemm_path(pool, px, x.dtype, x_zp, rq->rq, e, static_cast<uint8_t*>(y.data));
    }
  }

 private:
  struct Geo {
    int64_t N, H, W, C, oh, ow, pt, pl;
  };

  bool pointwise() const {
    return g_.kh == 1 && g_.kw == 1 && g_.sh == 1 && g_.sw == 1 &&
           std::all_of(g_.pads.begin(), g_.pads.end(), [](int64_t p) { return p == 0; }) &&
           (g_.auto_pad == "NOTSET" || g_.auto_pad == "VALID");
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
    const int32_t offset = x_zp + (!dw && x_type == DType::i8 ? 128 : 0);
    {
      std::lock_guard<std::mutex> lock(cache_->mu);
      if (cache_->arrays && cache_->key.matches(x_type, x_zp, op, qlo, qhi)) return cache_->arrays;
    }
    Key key{x_type, x_zp, op.x_scale, op.y_scale, op.y_zero_point, op.y_type, qlo, qhi, op.w_scale};
    auto arrays = std::make_shared<ConvRequantArrays>();
    prepare_conv_requant(g_.oc, dw ? dw_.colsum : ig_.colsum, dw ? dw_.abssum : ig_.abssum, bias_,
                         x_type, x_zp, offset, op.x_scale, op.w_scale, op.y_scale, op.y_zero_point,
                         op.y_type, qlo, qhi, arrays.get());
    std::lock_guard<std::mutex> lock(cache_->mu);
    cache_->key = std::move(key);
    cache_->arrays = arrays;
    return arrays;
  }

  // Copies n bytes; may write (never read) up to 16 bytes past dst + n, and reads 16 bytes
  // whenever src + 16 <= end (the gather's runs are 1-48 bytes: one vector move each).
  static void copy_run(uint8_t* __restrict dst, const uint8_t* __restrict src, int64_t n,
                       const uint8_t* end) {
    if (n <= 16 && src + 16 <= end) {
      std::memcpy(dst, src, 16);
    } else {
      std::memcpy(dst, src, static_cast<size_t>(n));
    }
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

  static constexpr int64_t kMR = kQ8IgemmMR;

  // Rows of pixels p, p+1, ... (kMR of them, repeating the last pixel past mr) as tap pointers
  // ptr[kMR t + i]; with gather_, the K bytes of each pixel's window are first copied into buf
  // (row i at i * gather_stride(), with room for copy_run's overhang) and ptr[i] points there.
  int64_t gather_stride() const { return (ig_.c + 16 + 15) / 16 * 16; }

  void fill_rows(const uint8_t* x, const uint8_t* x_end, const Geo& e, Pixel p, int64_t mr,
                 const uint8_t* pad, const int64_t* tap_off, uint8_t* buf,
                 const uint8_t** ptr) const {
    const int64_t taps = g_.kh * g_.kw, C = e.C;
    const int64_t kh = g_.kh, kw = g_.kw, sh = g_.sh, sw = g_.sw, dh = g_.dh, dw = g_.dw;
    const int64_t H = e.H, W = e.W, stride = gather_stride();
    for (int64_t i = 0; i < mr; ++i) {
      if (i > 0) p.next(e);
      const uint8_t* img = x + p.n * H * W * C;
      const int64_t iy0 = p.oy * sh - e.pt, ix0 = p.ox * sw - e.pl;
      const bool inside_x = ix0 >= 0 && ix0 + (kw - 1) * dw < W;
      if (!gather_) {
        if (inside_x && iy0 >= 0 && iy0 + (kh - 1) * dh < H) {
          const uint8_t* base = img + (iy0 * W + ix0) * C;
          for (int64_t t = 0; t < taps; ++t) ptr[kMR * t + i] = base + tap_off[t];
          continue;
        }
        for (int64_t ky = 0; ky < kh; ++ky)
          for (int64_t kx = 0; kx < kw; ++kx) {
            const int64_t iy = iy0 + ky * dh, ix = ix0 + kx * dw;
            ptr[kMR * (ky * kw + kx) + i] =
                iy >= 0 && iy < H && ix >= 0 && ix < W ? img + (iy * W + ix) * C : pad;
          }
        continue;
      }
      uint8_t* dst = buf + i * stride;
      ptr[i] = dst;
      const int64_t run = kw * C;
      for (int64_t ky = 0; ky < kh; ++ky, dst += run) {
        const int64_t iy = iy0 + ky * dh;
        if (iy < 0 || iy >= H) {
          std::memcpy(dst, pad, static_cast<size_t>(run));
          continue;
        }
        const uint8_t* src = img + (iy * W + ix0) * C;
        if (dw == 1 && inside_x) {
          copy_run(dst, src, run, x_end);
          continue;
        }
        for (int64_t kx = 0; kx < kw; ++kx) {
          const int64_t ix = ix0 + kx * dw;
          std::memcpy(dst + kx * C, ix >= 0 && ix < W ? src + kx * dw * C : pad,
                      static_cast<size_t>(C));
        }
      }
    }
  }

  void igemm_path(ThreadPool* pool, const uint8_t* x, DType x_type, int32_t x_zp,
                  const Q8ConvRequant& rq, const Geo& e, uint8_t* y) const {
    const int64_t rows = e.N * e.oh * e.ow, panels_m = (rows + kMR - 1) / kMR;
    const int64_t taps = g_.kh * g_.kw, C = e.C, oc = g_.oc, panels_n = ig_.panels();
    const int64_t ntaps = gather_ ? 1 : taps;
    const uint8_t* x_end = x + e.N * e.H * e.W * C;
    // Rows of zero-point codes long enough for any read (a padded tap, a gathered window row).
    const std::vector<uint8_t> pad(static_cast<size_t>(std::max(g_.kw * C, ig_.c) + 64),
                                   static_cast<uint8_t>(x_zp));
    std::vector<int64_t> tap_off(static_cast<size_t>(taps));
    for (int64_t ky = 0; ky < g_.kh; ++ky)
      for (int64_t kx = 0; kx < g_.kw; ++kx)
        tap_off[ky * g_.kw + kx] = (ky * g_.dh * e.W + kx * g_.dw) * C;
    const Q8IgemmFn fn = q8_igemm_kernel(x_type == DType::i8).fn;
    const bool direct_rows = !gather_ && pointwise();
    const double cost = static_cast<double>(kMR * oc * ntaps * ig_.groups * 4);
    parallel_for(pool, panels_m, cost, [&](int64_t b, int64_t end) {
      std::vector<const uint8_t*> ptr(static_cast<size_t>(kMR * ntaps));
      std::vector<uint8_t> buf(gather_ ? static_cast<size_t>(kMR * gather_stride()) : 0);
      Q8IgemmTile t;
      t.ntaps = ntaps;
      t.c = ig_.c;
      t.rows = ptr.data();
      t.rq = &rq;
      t.ldy = oc;
      const int64_t r = b * kMR;
      Pixel p{r / (e.oh * e.ow), r / e.ow % e.oh, r % e.ow};
      for (int64_t mp = b; mp < end; ++mp) {
        const int64_t r0 = mp * kMR;
        t.mr = std::min(kMR, rows - r0);
        if (direct_rows) {  // the image rows are A's rows
          for (int64_t i = 0; i < t.mr; ++i) ptr[i] = x + (r0 + i) * C;
        } else {
          fill_rows(x, x_end, e, p, t.mr, pad.data(), tap_off.data(), buf.data(), ptr.data());
          for (int64_t i = 0; i < kMR; ++i) p.next(e);
        }
        for (int64_t pn = 0; pn < panels_n; ++pn) {
          t.n0 = pn * 16;
          t.nc = std::min<int64_t>(16, oc - t.n0);
          t.b = ig_.panel(pn);
          t.y = y + r0 * oc + t.n0;
          fn(t);
        }
      }
    });
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
  bool gather_ = false;  // dense conv on few channels: gather K-byte rows, one tap
  IgemmWeights ig_;
  DwconvWeights dw_;
  std::shared_ptr<Cache> cache_ = std::make_shared<Cache>();  // shared_ptr: the class is moved
};

}  // namespace sliver::ops::q
