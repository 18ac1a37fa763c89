// Conv (1-D and 2-D, groups, pads/strides/dilations/auto_pad, bias) and sliver:FusedConv.
//
// Five paths, chosen per node:
//  - depthwise (one input and one output channel per group): a stencil per channel plane: the
//    f32_dwconv plane kernels for 3x3/5x5 windows with stride 1 or 2 (no copy; on AVX-512 one
//    flat pass per plane for "same" geometries; small static 3x3 planes otherwise 8 channels per
//    vector, f32_dwconv_c8), else the row kernels, with padding and stride as tap pointers into
//    a padded copy.
//  - Winograd F(2x2, 3x3) (conv_winograd.cc): 3x3, stride 1, >= 8 channels in and out per group.
//  - direct pointwise (1x1 window, stride 1, no padding, < 48 outputs per group): the input
//    planes already are the GEMM's B (C_in x H*W), so Y_g = W_g * X_g on the GEMM driver.
//  - few pixels (a static input shape with few output pixels, e.g. 7x7, and large weights):
//    the im2col GEMM with the pixels on its rows (conv_few_pixels.h).
//  - im2col (everything else): the GEMM's B, the K = C_in/g * kh * kw window values of every
//    output pixel, is written one cache block at a time straight in the micro-kernel's packed
//    layout and consumed at once (conv_im2col.h, conv_igemm.h).
// Bias, activation and residual ride in the GEMM epilogue or the output transform, so Y is
// written once. Layout NCHW throughout; 1-D convs run as 2-D with H = 1.
#include "ops/common.h"
#include "ops/conv_geometry.h"
#include "ops/conv_few_pixels.h"
#include "ops/conv_igemm.h"
#include "ops/conv_im2col.h"
#include "ops/conv_winograd.h"
#include "ukernels/f32_dwconv/f32_dwconv.h"
#include "ukernels/f32_winograd/f32_winograd.h"

namespace sliver::ops {
namespace {

// dst[t] = src[t * s + off] for t < n where that index lies in [0, len), else 0: one row of a
// padded, strided view of an input row (depthwise phases).
inline void gather_row(float* dst, int64_t n, const float* src, int64_t len, int64_t off,
                       int64_t s) {
  const int64_t lo = off >= 0 ? 0 : std::min(n, (-off + s - 1) / s);
  const int64_t hi = std::max(lo, std::min(n, off >= len ? 0 : (len - 1 - off) / s + 1));
  std::fill(dst, dst + lo, 0.f);
  if (s == 1) {
    std::copy(src + off + lo, src + off + hi, dst + lo);
  } else {
    for (int64_t t = lo; t < hi; ++t) dst[t] = src[t * s + off];
  }
  std::fill(dst + hi, dst + n, 0.f);
}

// The im2col path: Y_g (M x pixels) = W_g (M x K, packed once) * im2col(X_g) (K x pixels), on
// conv_igemm's engine. The pixels go in N blocks of panels and K in blocks of whole input
// channels; im2col writes one (N block, K block) of B at a time, about 128 KiB for L2, and
// conv_gemm_kblock streams that K block of A past it, one sequential read (A is packed
// K-block-major). So A is read once per N block, whatever K is: with one K x NR panel of B at a
// time, as before, a deep conv (3x3 x 512 channels) read all of A from memory per 16 pixels.
constexpr int64_t kConvKC = 256;        // K block target, in rows of B
constexpr int64_t kConvMaxKC = 320;     // K up to this is one block
constexpr int64_t kConvBBlockFloats = 32 * 1024;
// Pointwise convs with this many output channels per group (or more) copy their input into
// panels too: enough rows reuse each panel, and the driver's in-place B reads rows a plane
// apart, which for power-of-2 planes all fall in a few cache sets.
constexpr int64_t kPackedPointwiseMinM = 48;
// Depthwise 3x3 planes (input and output pixels) up to which the channel-blocked kernel (8
// channels per vector) runs instead of the plane kernels. Thread CPU time, Zen 3, MobileNetV2's
// layers alone, blocked / plane: 7x7 and 14x14 s1 1.5x faster, 28x28 s1 1.34x, 56x56 s1 1.19x,
// 14 -> 7 and 28 -> 14 s2 1.37x and 1.14x, 56 -> 28 s2 1.05x; 112 -> 56 s2 even (and the
// block's scratch would pass 1 MiB), so larger planes keep the plane kernels.
constexpr int64_t kDwconvC8MaxPixels = 56 * 56;
// Below this many multiply-adds a conv runs on one thread (waking a worker costs microseconds).
constexpr double kConvMinParallelMacs = 1 << 17;
// Tasks per thread to aim for: a worker that wakes late leaves its share to the others.
constexpr int64_t kConvTasksPerThread = 2;

// One image and group of an im2col conv.
struct ConvGemm {
  const F32GemmKernel* kern;
  const ConvGeom* g;
  const Im2colSource* in;
  int64_t cg, M, K;
  const PackedA* a;  // pack_conv_weights
  const float* x;    // the group's first input channel
  float* y;          // the group's first output channel
  Epilogue ep;       // bias and residual advanced to the group
  int64_t cpb;       // input channels per K block
  int64_t nb;        // panels per N block
  RowTiles tiles;    // of W
};

// Row tiles [t0, t1) of W for the output pixels of panels [q0, q1): per N block and K block,
// im2col into scratch, then the GEMM on it.
void conv_tiles(const ConvGemm& c, int64_t t0, int64_t t1, int64_t q0, int64_t q1) {
  const int64_t NR = c.kern->nr, ohw = c.g->out_plane(), taps = c.K / c.cg;
  float* buf = thread_scratch(0, static_cast<size_t>(c.nb * c.cpb * taps * NR));
  for (int64_t q = q0; q < q1; q += c.nb) {
    const int64_t gq = std::min(c.nb, q1 - q), p0 = q * NR, p1 = std::min(ohw, p0 + gq * NR);
    Epilogue ep = c.ep;
    if (ep.residual) ep.residual += p0;
    for (int64_t c0 = 0; c0 < c.cg; c0 += c.cpb) {
      const int64_t c1 = std::min(c.cg, c0 + c.cpb);
      im2col_panels(static_cast<int>(NR), *c.g, *c.in, c1 - c0, c.x + c0 * c.in->plane, buf, p0,
                    p1, 0, gq);
      conv_gemm_kblock(*c.kern, conv_a_block(*c.a, c0 * taps), c.tiles, t0, t1, (c1 - c0) * taps,
                       buf, gq, p1 - p0 - (gq - 1) * NR, c0 == 0, c1 == c.cg ? &ep : nullptr,
                       c.y + p0, ohw);
    }
  }
}

class ConvKernel final : public Kernel {
 public:
  ConvKernel(WindowAttrs w, int64_t group, const Shape& wshape, const KernelInit& init,
             const Epilogue& ep, int residual_input)
      : w_(std::move(w)), group_(group), wshape_(wshape), ep_(ep), residual_input_(residual_input) {
    m_ = wshape[0];
    cg_ = wshape[1];
    kh_ = wshape.size() == 4 ? wshape[2] : 1;
    kw_ = wshape.back();
    depthwise_ = cg_ == 1 && m_ == group_;
    if (init.is_const(1)) weights_ = init.const_inputs[1];
    if (init.has_input(2) && init.is_const(2)) bias_ = init.const_inputs[2];
    const int64_t mg = m_ / group_, k = cg_ * kh_ * kw_;
    if (depthwise_) {
      dw_ = &f32_dwconv_kernel(static_cast<int>(kh_ * kw_));
      // Square 3x3/5x5 windows, equal strides 1 or 2, no dilation: the plane kernels.
      if (kh_ == kw_ && w_.strides.size() == 2 && w_.strides[0] == w_.strides[1] &&
          w_.dilations[0] == 1 && w_.dilations[1] == 1) {
        dw2d_ = f32_dwconv2d_kernel(static_cast<int>(kh_), static_cast<int>(w_.strides[0]));
        // Small static planes: 8 channels per vector instead (see kDwconvC8MaxPixels), unless
        // the plane kernel runs them as one flat pass (AVX-512), which is faster still.
        const int64_t out = static_out_pixels(init);
        const Shape& in = init.input_shapes.empty() ? Shape{} : init.input_shapes[0].dims;
        if (dw2d_ && out > 0 && out <= kDwconvC8MaxPixels && in.size() == 4 &&
            in[2] * in[3] <= kDwconvC8MaxPixels &&
            !f32_dwconv2d_kernel_flat(*dw2d_, in[2], in[3], resolve_axis(w_, 0, in[2]).out,
                                      resolve_axis(w_, 1, in[3]).out))
          dwc8_ = f32_dwconv_c8_kernel(static_cast<int>(kh_), static_cast<int>(w_.strides[0]));
        if (dwc8_ && weights_.defined()) {  // constant weights: their lane layout, once
          dwc8_w_.resize(static_cast<size_t>((m_ + 7) / 8 * kh_ * kw_ * 8));
          pack_dwconv_c8_weights(weights_.ptr<float>(), m_, static_cast<int>(kh_ * kw_),
                                 dwc8_w_.data());
        }
      }
    } else if (weights_.defined()) {
      direct_ = pointwise() && mg < kPackedPointwiseMinM;
      // Winograd also wants finite weights (its transforms would turn an infinity into NaN).
      winograd_ = wshape.size() == 4 &&
                  winograd_suits(kh_, kw_, w_.strides, w_.dilations, cg_, mg) &&
                  all_finite(weights_.ptr<float>(), weights_.numel());
      // Few output pixels (a static input shape tells): the GEMM with the pixels on its rows.
      const int64_t pixels = static_out_pixels(init);
      const bool wino_rows = winograd_ && winograd_tiles_on_rows(static_wino_tiles(init), mg, cg_);
      few_pixels_ = !winograd_ && !direct_ && pixels > 0 &&
                    few_pixels_suit(pixels, mg, k, f32_gemm_kernel());
      // Direct pointwise convs run on the GEMM driver (plain packed A), the others on
      // conv_igemm's engine (row tiles; Winograd: 16 transformed matrices per group; few
      // pixels: the weights as B panels).
      for (int64_t gi = 0; gi < group_; ++gi) {
        const float* wg = weights_.ptr<float>() + gi * mg * k;
        if (few_pixels_) {
          packed_t_.push_back(pack_conv_weights_t(f32_gemm_kernel(), mg, k, wg,
                                                  kblock_channels() * kh_ * kw_));
        } else if (winograd_) {
          winograd_pack_weights(f32_gemm_kernel(), mg, cg_, wg, wino_rows, &wino_);
        } else {
          packed_.push_back(direct_ ? pack_a(mg, k, wg, k, false)
                                    : pack_conv_weights(f32_gemm_kernel(), mg, k, wg,
                                                        kblock_channels() * kh_ * kw_));
        }
      }
    } else {
      direct_ = pointwise();
    }
  }

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    const Tensor& wt = weights_.defined() ? weights_ : need(in, 1);
    const Tensor* bias = bias_.defined() ? &bias_ : opt(in, 2);
    const Tensor* res = residual_input_ >= 0 ? opt(in, residual_input_) : nullptr;
    const size_t nsp = wshape_.size() - 2;
    if (x.dtype != DType::f32 || x.rank() != static_cast<int64_t>(nsp) + 2)
      fail("expected a float input of rank ", nsp + 2, ", got ", shape_str(x.shape));
    if (wt.shape != wshape_)
      fail("weights of shape ", shape_str(wt.shape), ", expected ", shape_str(wshape_));
    ConvGeom g;
    g.n = x.shape[0];
    g.c = x.shape[1];
    g.m = m_;
    g.group = group_;
    if (g.c != cg_ * group_)
      fail("input has ", g.c, " channels, weights expect ", cg_, " x ", group_, " groups");
    g.h = nsp == 2 ? resolve_axis(w_, 0, x.shape[2]) : AxisGeom{1, 1, 1, 1, 1, 0, 0};
    g.w = resolve_axis(w_, nsp - 1, x.shape.back());
    if (bias && (bias->dtype != DType::f32 || bias->numel() != m_))
      fail("bias must be float[", m_, "], got ", shape_str(bias->shape));
    Shape yshape = {g.n, g.m};
    if (nsp == 2) yshape.push_back(g.h.out);
    yshape.push_back(g.w.out);
    Tensor y = Tensor::empty(DType::f32, yshape);

    Epilogue ep = ep_;
    ep.bias = bias ? bias->ptr<float>() : nullptr;
    ep.bias_per_row = true;
    const bool late_residual = res && res->shape != yshape;
    if (res && !late_residual) {
      if (res->dtype != DType::f32) fail("residual must be float");
      ep.residual = res->ptr<float>();
      ep.ld_residual = g.out_plane();
    }
    if (late_residual) ep.post_act = Act::none;
    if (y.numel() > 0) {
      if (depthwise_)
        run_depthwise(g, x.ptr<float>(), wt.ptr<float>(), ep, y.ptr<float>(), ctx.pool);
      else if (!winograd_ ||
               !winograd_conv(g, wino_, x.ptr<float>(), ep, y.ptr<float>(), ctx.pool))
        run_gemm(g, x.ptr<float>(), wt.ptr<float>(), ep, y.ptr<float>(), ctx.pool);
    }
    if (late_residual) {
      add_broadcast_inplace(y, *res, ctx.pool);
      apply_act_inplace(ep_.post_act, ep_.post_alpha, ep_.post_beta, y.ptr<float>(), y.numel());
    }
    out[0] = std::move(y);
  }

  int64_t weight_bytes() const override {
    return packed_bytes(packed_) + packed_bytes(packed_t_) + wino_.bytes();
  }
  std::string describe() const override {
    std::string s;
    if (depthwise_)
      s = std::string("conv_depthwise ") + (dwc8_ ? dwc8_->name : dw2d_ ? dw2d_->name : dw_->name);
    else if (winograd_)
      s = std::string("conv_winograd ") + f32_winograd_kernel().name +
          (wino_.tiles_on_rows() ? " tiles-on-rows" : "");
    else if (few_pixels_) s = std::string("conv_few_pixels ") + f32_gemm_kernel().name;
    else s = std::string(direct_ ? "conv_1x1 " : "conv_im2col ") + f32_gemm_kernel().name;
    if (ep_.act != Act::none) s += std::string(" +") + act_name(ep_.act);
    if (residual_input_ >= 0) s += " +residual";
    if (ep_.post_act != Act::none) s += std::string(" +") + act_name(ep_.post_act);
    return s;
  }

 private:
  // Output pixels per image for the static input shape, or 0 when it is not known.
  int64_t static_out_pixels(const KernelInit& init) const {
    if (init.input_shapes.empty() || !init.input_shapes[0].known) return 0;
    const Shape& d = init.input_shapes[0].dims;
    if (d.size() != wshape_.size()) return 0;
    int64_t pixels = 1;
    for (size_t i = 2; i < d.size(); ++i) {
      if (d[i] <= 0) return 0;
      pixels *= resolve_axis(w_, i - 2, d[i]).out;
    }
    return pixels;
  }

  // 2x2 output tiles per image for the static input shape (a 2-D conv), or 0 when not known.
  int64_t static_wino_tiles(const KernelInit& init) const {
    if (wshape_.size() != 4 || init.input_shapes.empty() || !init.input_shapes[0].known) return 0;
    const Shape& d = init.input_shapes[0].dims;
    if (d.size() != 4 || d[2] <= 0 || d[3] <= 0) return 0;
    return (resolve_axis(w_, 0, d[2]).out + 1) / 2 * ((resolve_axis(w_, 1, d[3]).out + 1) / 2);
  }

  // Input channels per K block of the im2col GEMM: K (C_in/g * kh * kw) in blocks of whole
  // channels of about kConvKC rows.
  int64_t kblock_channels() const {
    const int64_t k = cg_ * kh_ * kw_;
    const int64_t kblocks = k <= kConvMaxKC ? 1 : (k + kConvKC - 1) / kConvKC;
    return (cg_ + kblocks - 1) / kblocks;
  }

  bool pointwise() const {
    if (kh_ != 1 || kw_ != 1) return false;
    for (int64_t s : w_.strides)
      if (s != 1) return false;
    for (int64_t p : w_.pads)
      if (p != 0 && w_.auto_pad == "NOTSET") return false;
    return true;
  }

  void run_gemm(const ConvGeom& g, const float* x, const float* wt, const Epilogue& ep, float* y,
                ThreadPool* pool) const {
    const int64_t mg = g.m / g.group, k = cg_ * kh_ * kw_, ohw = g.out_plane();
    if (direct_) {  // the input planes are B as they are (pointwise(): no pads, stride 1)
      for (int64_t n = 0; n < g.n; ++n) {
        for (int64_t gi = 0; gi < g.group; ++gi) {
          GemmOperandA a;
          if (!packed_.empty()) {
            a.packed = packed_[gi].get();
          } else {
            a.data = wt + gi * mg * k;
            a.ld = k;
          }
          GemmOperandB b;
          b.data = x + (n * g.c + gi * cg_) * g.in_plane();
          b.ld = ohw;
          Epilogue e = ep;
          if (e.bias) e.bias += gi * mg;
          const int64_t yoff = (n * g.m + gi * mg) * ohw;
          if (e.residual) e.residual += yoff;
          f32_gemm(mg, ohw, k, a, b, y + yoff, ohw, e, pool);
        }
      }
      return;
    }
    const F32GemmKernel& kern = f32_gemm_kernel();
    const int64_t taps = kh_ * kw_, cpb = kblock_channels();
    // Weights given at run time, or Winograd's input had NaN/infinities (wino_ holds its
    // transformed weights): pack for this run.
    std::vector<std::shared_ptr<PackedA>> run_packed;
    if (packed_.empty() && packed_t_.empty())
      for (int64_t gi = 0; gi < g.group; ++gi)
        run_packed.push_back(pack_conv_weights(kern, mg, k, wt + gi * mg * k, cpb * taps));
    const auto& packed = run_packed.empty() ? packed_ : run_packed;
    const Im2colSource in = im2col_source(g, x, kh_, kw_, pool, 1);
    if (few_pixels_) {
      conv_few_pixels(g, in, kh_, kw_, packed_t_, cpb, ep, y, pool);
      return;
    }
    const int64_t NR = kern.nr, panels = (ohw + NR - 1) / NR, ng = g.n * g.group;
    int64_t nb = std::clamp<int64_t>(kConvBBlockFloats / (cpb * taps * NR), 1, panels);
    auto gemm_of = [&](int64_t ngi) {  // ngi = image * groups + group
      const int64_t n = ngi / g.group, gi = ngi % g.group;
      ConvGemm c{&kern, &g, &in, cg_, mg, k, packed[gi].get(), nullptr, nullptr, ep, cpb, nb,
                 RowTiles(mg, kern.mr)};
      c.x = in.x + (n * g.c + gi * cg_) * in.plane;
      const int64_t yoff = (n * g.m + gi * mg) * ohw;
      c.y = y + yoff;
      if (c.ep.bias) c.ep.bias += gi * mg;
      if (c.ep.residual) c.ep.residual += yoff;
      return c;
    };
    // Tasks: (image and group, N block, part of the rows of W). With too few N blocks for the
    // threads, either cut N finer (each block reads all of A again) or split the rows of W
    // (each part repeats the im2col of its block), whichever copies less.
    const int64_t tiles_m = RowTiles(mg, kern.mr).count;
    int threads = pool ? pool->num_threads() : 1;
    if (static_cast<double>(mg) * k * ohw * ng < kConvMinParallelMacs) threads = 1;
    int64_t tm = 1;
    if (threads > 1) {
      const int64_t want = kConvTasksPerThread * threads, blocks = (panels + nb - 1) / nb;
      if (ng * blocks < want) {
        const int64_t nb_n = std::max<int64_t>(1, panels / ((want + ng - 1) / ng));
        const double extra_n = static_cast<double>((panels + nb_n - 1) / nb_n - blocks) * mg * k;
        const int64_t tm_m = std::min(tiles_m, (want + ng * blocks - 1) / (ng * blocks));
        const double extra_m = 2.0 * static_cast<double>(tm_m - 1) * k * ohw;
        if (extra_n <= extra_m) nb = nb_n;
        else tm = tm_m;
      }
    }
    const int64_t blocks = (panels + nb - 1) / nb, tasks = ng * blocks * tm;
    auto task = [&](int64_t i) {
      const int64_t part = i % tm, blk = i / tm % blocks;
      conv_tiles(gemm_of(i / tm / blocks), tiles_m * part / tm, tiles_m * (part + 1) / tm,
                 blk * nb, std::min(panels, (blk + 1) * nb));
    };
    if (threads > 1 && tasks > 1) {
      pool->parallel_tasks(tasks, task);
    } else {
      for (int64_t i = 0; i < tasks; ++i) task(i);
    }
  }

  // The geometry and clamp fields the plane and channel-blocked kernels share; returns whether
  // the kernel applies the whole epilogue (the clamp covers none/Relu/Clip alone; anything else
  // runs after the kernel).
  template <class Params>
  static bool plane_params(const ConvGeom& g, const Epilogue& ep, Params* p) {
    const bool fused = !ep.residual && ep.post_act == Act::none &&
                       (ep.act == Act::none || ep.act == Act::relu || ep.act == Act::clip);
    p->in_h = g.h.in;
    p->in_w = g.w.in;
    p->out_h = g.h.out;
    p->out_w = g.w.out;
    p->pad_top = g.h.pad_begin;
    p->pad_left = g.w.pad_begin;
    p->clamp = fused && ep.act != Act::none;
    p->lo = ep.act == Act::clip ? ep.alpha : 0.f;
    p->hi = ep.act == Act::clip ? ep.beta : std::numeric_limits<float>::infinity();
    return fused;
  }

  // Depthwise on the plane kernels: no copy, bias and Relu/Clip applied in the kernel.
  void run_depthwise_planes(const ConvGeom& g, const float* x, const float* wt, const Epilogue& ep,
                            float* y, ThreadPool* pool) const {
    const int64_t taps = kh_ * kw_, ohw = g.out_plane();
    float* zero = thread_scratch(1, static_cast<size_t>(g.w.in));  // read by every thread
    std::memset(zero, 0, sizeof(float) * g.w.in);
    F32Dwconv2dParams base{};
    const bool fused = plane_params(g, ep, &base);
    base.zero = zero;
    const F32Dwconv2dFn fn = dw2d_->fn;
    const size_t scratch = static_cast<size_t>(f32_dwconv2d_scratch(g.h.in, g.w.in));
    parallel_for(pool, g.n * g.c, static_cast<double>(ohw * taps), [&](int64_t p0, int64_t p1) {
      F32Dwconv2dParams prm = base;
      prm.scratch = thread_scratch(0, scratch);
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t ch = p % g.c;
        prm.x = x + p * g.in_plane();
        prm.y = y + p * ohw;
        prm.w = wt + ch * taps;
        prm.bias = ep.bias ? ep.bias[ch] : 0.f;
        fn(prm);
        if (!fused) finish_epilogue(ep, prm.y, ohw, ep.residual ? ep.residual + p * ohw : nullptr);
      }
    });
  }

  // Depthwise on the channel-blocked kernel: blocks of 8 channels of one image.
  void run_depthwise_c8(const ConvGeom& g, const float* x, const float* wt, const Epilogue& ep,
                        float* y, ThreadPool* pool) const {
    const int64_t taps = kh_ * kw_, ohw = g.out_plane(), blocks = (g.c + 7) / 8;
    F32DwconvC8Params base{};
    const bool fused = plane_params(g, ep, &base);
    base.x_stride = g.in_plane();
    base.y_stride = ohw;
    const size_t scratch = static_cast<size_t>(
        f32_dwconv_c8_scratch(dwc8_->k, dwc8_->stride, g.h.in, g.w.in, g.h.out, g.w.out));
    const F32DwconvC8Fn fn = dwc8_->fn;
    std::vector<float> packed_now;  // weights that are not constants: their lane layout per run
    const float* wl = dwc8_w_.data();
    if (dwc8_w_.empty()) {
      packed_now.resize(static_cast<size_t>(blocks * taps * 8));
      pack_dwconv_c8_weights(wt, g.c, static_cast<int>(taps), packed_now.data());
      wl = packed_now.data();
    }
    parallel_for(pool, g.n * blocks, static_cast<double>(8 * ohw * taps),
                 [&](int64_t b0, int64_t b1) {
                   F32DwconvC8Params prm = base;
                   prm.scratch = thread_scratch(0, scratch);
                   for (int64_t b = b0; b < b1; ++b) {
                     const int64_t c0 = b % blocks * 8, p0 = b / blocks * g.c + c0;
                     prm.nc = static_cast<int>(std::min<int64_t>(8, g.c - c0));
                     prm.x = x + p0 * g.in_plane();
                     prm.y = y + p0 * ohw;
                     prm.w = wl + c0 * taps;  // block c0 / 8: taps x 8 floats
                     prm.bias = ep.bias ? ep.bias + c0 : nullptr;
                     fn(prm);
                     if (fused) continue;
                     for (int c = 0; c < prm.nc; ++c)
                       finish_epilogue(ep, prm.y + c * ohw, ohw,
                                       ep.residual ? ep.residual + (p0 + c) * ohw : nullptr);
                   }
                 });
  }

  void run_depthwise(const ConvGeom& g, const float* x, const float* wt, const Epilogue& ep,
                     float* y, ThreadPool* pool) const {
    const AxisGeom &H = g.h, &W = g.w;
    if (dw2d_ && H.s == W.s && H.s == dw2d_->stride && H.d == 1 && W.d == 1 &&
        H.pad_begin < H.k && W.pad_begin < W.k) {
      // The static shape chose the channel-blocked kernel; a larger actual plane keeps the
      // plane kernel (the block would no longer fit the caches).
      if (dwc8_ && g.out_plane() <= kDwconvC8MaxPixels && g.in_plane() <= kDwconvC8MaxPixels)
        run_depthwise_c8(g, x, wt, ep, y, pool);
      else
        run_depthwise_planes(g, x, wt, ep, y, pool);
      return;
    }
    const int64_t taps = kh_ * kw_, ohw = g.out_plane();
    // Extent of input rows/columns the windows touch, counted from the top-left padding corner.
    const int64_t ph = (H.out - 1) * H.s + (H.k - 1) * H.d + 1;
    const int64_t pw = (W.out - 1) * W.s + (W.k - 1) * W.d + 1;
    // Strides 1 and 2 are the kernels' own; larger ones read column phases (see below).
    const bool phases = W.s > 2;
    const int64_t ks = phases ? 1 : W.s;
    const bool direct = !phases && H.pad_begin == 0 && W.pad_begin == 0 && ph <= H.in && pw <= W.in;
    const int64_t phase_w = (pw + W.s - 1) / W.s;  // width of one column phase
    const F32DwconvFn fn = dw_->fn;
    parallel_for(pool, g.n * g.c, static_cast<double>(ohw * taps), [&](int64_t p0, int64_t p1) {
      std::vector<const float*> tp(taps);
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t ch = p % g.c;
        const float* xp = x + p * g.in_plane();
        const float* src = xp;
        int64_t row_stride = W.in;
        if (!direct) {
          // The padded plane (ph x pw); with phases, split into W.s planes of columns
          // q, q + s, q + 2s, ... so that every tap reads adjacent floats.
          const int64_t nq = phases ? W.s : 1, width = phases ? phase_w : pw;
          float* buf = thread_scratch(0, static_cast<size_t>(nq * ph * width));
          for (int64_t q = 0; q < nq; ++q) {
            for (int64_t r = 0; r < ph; ++r) {
              float* dst = buf + (q * ph + r) * width;
              const int64_t ih = r - H.pad_begin;
              if (ih < 0 || ih >= H.in) std::fill(dst, dst + width, 0.f);
              else gather_row(dst, width, xp + ih * W.in, W.in, q - W.pad_begin, nq);
            }
          }
          src = buf;
          row_stride = width;
        }
        float* yp = y + p * ohw;
        const float bias = ep.bias ? ep.bias[ch] : 0.f;
        for (int64_t oh = 0; oh < H.out; ++oh) {
          for (int64_t i = 0; i < H.k; ++i) {
            const int64_t r = oh * H.s + i * H.d;
            for (int64_t j = 0; j < W.k; ++j) {
              const int64_t c0 = j * W.d;
              tp[i * W.k + j] = phases ? src + ((c0 % W.s) * ph + r) * row_stride + c0 / W.s
                                       : src + r * row_stride + c0;
            }
          }
          fn(W.out, ks, static_cast<int>(taps), tp.data(), wt + ch * taps, bias, yp + oh * W.out);
        }
        finish_epilogue(ep, yp, ohw, ep.residual ? ep.residual + p * ohw : nullptr);
      }
    });
  }

  WindowAttrs w_;
  int64_t group_;
  Shape wshape_;
  Epilogue ep_;
  int residual_input_;
  int64_t m_ = 0, cg_ = 0, kh_ = 1, kw_ = 1;
  bool depthwise_ = false;
  const F32DwconvKernel* dw_ = nullptr;
  const F32Dwconv2dKernel* dw2d_ = nullptr;  // the plane kernel, when the window allows
  const F32DwconvC8Kernel* dwc8_ = nullptr;  // the channel-blocked one, for small planes
  std::vector<float> dwc8_w_;  // its packed constant weights (pack_dwconv_c8_weights)
  bool direct_ = false;    // pointwise on the GEMM driver, B = the input planes
  bool winograd_ = false;  // wino_ holds the transformed weights
  bool few_pixels_ = false;  // packed_t_ holds the weights (conv_few_pixels)
  std::vector<std::shared_ptr<PackedB>> packed_t_;
  Tensor weights_, bias_;
  std::vector<std::shared_ptr<PackedA>> packed_;
  WinogradWeights wino_;
};

template <bool kFused>
std::unique_ptr<Kernel> make_conv(const KernelInit& init) {
  if (init.num_inputs() < 2 || init.num_outputs() != 1) return nullptr;
  for (int i = 0; i < init.num_inputs(); ++i)
    if (init.has_input(i) && init.input_dtypes[i] != DType::f32) return nullptr;
  if (!kFused && init.num_inputs() > 3) return nullptr;
  Shape wshape;
  if (init.is_const(1)) {
    wshape = init.const_inputs[1].shape;
  } else if (init.input_shapes.size() > 1 && init.input_shapes[1].known) {
    wshape = init.input_shapes[1].dims;
    for (int64_t d : wshape)
      if (d < 0) return nullptr;
  } else {
    return nullptr;
  }
  if (wshape.size() != 3 && wshape.size() != 4) return nullptr;  // 1-D and 2-D only
  const size_t nsp = wshape.size() - 2;
  WindowAttrs w;
  if (!w.read(init.attrs, nsp, Shape(wshape.begin() + 2, wshape.end()))) return nullptr;
  if (w.kernel != Shape(wshape.begin() + 2, wshape.end()) || w.ceil_mode) return nullptr;
  const int64_t group = init.attrs.get_int("group", 1);
  if (group < 1 || wshape[0] % group != 0 || wshape[0] == 0) return nullptr;
  Epilogue ep;
  if (kFused && !fused_epilogue(init.attrs, &ep)) return nullptr;
  return std::make_unique<ConvKernel>(std::move(w), group, wshape, init, ep,
                                      kFused && init.has_input(3) ? 3 : -1);
}
SLIVER_REGISTER_KERNEL("Conv", make_conv<false>);
SLIVER_REGISTER_KERNEL("sliver:FusedConv", make_conv<true>);

}  // namespace
}  // namespace sliver::ops
