// Conv (1-D and 2-D, groups, pads/strides/dilations/auto_pad, bias) and sliver:FusedConv.
//
// Four paths, chosen per node:
//  - depthwise (one input and one output channel per group): a stencil per channel plane: the
//    f32_dwconv plane kernels for 3x3/5x5 windows with stride 1 or 2 (no copy), else the row
//    kernels, with padding and stride as tap pointers into a padded copy.
//  - Winograd F(2x2, 3x3) (conv_winograd.cc): 3x3, stride 1, >= 8 channels in and out per group.
//  - direct pointwise (1x1 window, stride 1, no padding, < 48 outputs per group): the input
//    planes already are the GEMM's B (C_in x H*W), so Y_g = W_g * X_g on the GEMM driver.
//  - im2col (everything else): the GEMM's B, the K = C_in/g * kh * kw window values of every
//    output pixel, is written a few panels at a time straight in the micro-kernel's packed
//    layout and consumed at once (conv_igemm.h).
// Bias, activation and residual ride in the GEMM epilogue or the output transform, so Y is
// written once. Layout NCHW throughout; 1-D convs run as 2-D with H = 1.
#include "ops/common.h"
#include "ops/conv_geometry.h"
#include "ops/conv_igemm.h"
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

// Im2col in the GEMM's packed-B layout. The GEMM's B is the K x pixels matrix whose row
// r = (ci, i, j) holds, for each output pixel, the input value under window tap (i, j) of
// channel ci (0 in the padding). The micro-kernel reads B as panels of NR pixels stored k-major
// (b[k * NR + t]); writing those panels directly is the only copy of the window values made.
//
// The panels are read from planes where every window lies inside: the input itself, or, when
// the windows reach into the padding, a zero-bordered copy (one pass over the input, a fraction
// of the K / C_in passes im2col makes). Then every row of a panel is a plain copy (stride 1:
// NR adjacent inputs) when the panel's pixels lie on one output row, else one run per output
// row. (Splitting strided rows into phases in the copy, to make stride 2 contiguous too,
// measured slower: the deinterleaving copy costs more than the strided gathers it saves.)

// Where im2col reads its inputs: the input planes or their zero-bordered copy.
struct Im2colSource {
  const float* x = nullptr;  // image 0, channel 0
  int64_t plane = 0;         // floats between channels
  int64_t ld = 0;            // floats between input rows
  int64_t step = 1;          // floats between the inputs of horizontally adjacent outputs
  std::vector<int64_t> tap;  // per window column j: offset of its input (for output column 0)
};

// L floats src[t * S] (S = 0: stride s) to dst, L a compile-time length: fixed-size moves the
// compiler turns into vector loads and stores, with no loop or call to memcpy.
template <int L, int S>
inline void copy_run(float* __restrict dst, const float* __restrict src, int64_t s) {
  if constexpr (S == 1) {
    std::memcpy(dst, src, sizeof(float) * L);
  } else {
    const int64_t step = S == 0 ? s : S;
    for (int t = 0; t < L; ++t) dst[t] = src[t * step];
  }
}

// Writes the panel of output pixels [pa, pb) (pb - pa <= NR; columns past pb are zeros) of one
// image and group (output geometry g, inputs at x laid out as in.plane/ld/step/tap) into d
// (K * NR floats). S: in.step when 1 or 2, else 0. L > 0: the panel is NR / L whole output
// rows of L pixels (W.out == L); L == 0: any panel.
template <int NR, int S, int L>
void im2col_panel(const ConvGeom& g, const Im2colSource& in, int64_t cg, const float* x, float* d,
                  int64_t pa, int64_t pb) {
  const AxisGeom &H = g.h, &W = g.w;
  const int64_t kw = W.k, row_step = H.d * in.ld, in_row_step = H.s * in.ld;
  const int64_t oh = pa / W.out, ow = pa % W.out;
  const float* xr = x + oh * in_row_step + ow * in.step;  // input of pixel pa, before the tap
  const int64_t* tap = in.tap.data();
  if (L > 0 || (pb - pa == NR && ow + NR <= W.out)) {
    // Runs of adjacent pixels on one output row each, starting in_row_step apart.
    constexpr int kRun = L > 0 ? L : NR;
    const int64_t runs = L > 0 ? (pb - pa + L - 1) / L : 1;
    if (L > 0 && pb - pa < NR) {
      for (int64_t r = 0; r < cg * H.k * kw; ++r)
        std::memset(d + r * NR + runs * L, 0, sizeof(float) * (NR - runs * L));
    }
    for (int64_t ci = 0; ci < cg; ++ci, xr += in.plane) {
      const float* src = xr;
      for (int64_t i = 0; i < H.k; ++i, src += row_step) {
        for (int64_t j = 0; j < kw; ++j, d += NR) {
          const float* sj = src + tap[j];
          for (int64_t r = 0; r < runs; ++r)
            copy_run<kRun, S>(d + r * kRun, sj + r * in_row_step, in.step);
        }
      }
    }
    return;
  }
  // Any other panel: each pixel's input offset from a table, gathered one by one.
  int64_t off[NR];
  for (int64_t t = 0; t < NR; ++t) {
    const int64_t p = std::min(pa + t, pb - 1);  // columns past pb: zeroed below
    off[t] = (p / W.out - oh) * in_row_step + (p % W.out - ow) * in.step;
  }
  const int64_t n = pb - pa;
  for (int64_t ci = 0; ci < cg; ++ci, xr += in.plane) {
    const float* src = xr;
    for (int64_t i = 0; i < H.k; ++i, src += row_step) {
      for (int64_t j = 0; j < kw; ++j, d += NR) {
        const float* sj = src + tap[j];
        for (int t = 0; t < NR; ++t) d[t] = sj[off[t]];
        for (int64_t t = n; t < NR; ++t) d[t] = 0.f;
      }
    }
  }
}

// Panels [q0, q1) of the block of pixels starting at p0 (panel q: pixels p0 + q * NR ...,
// below p1), at dst + q * K * NR.
void im2col_panels(int nr, const ConvGeom& g, const Im2colSource& in, int64_t cg, const float* x,
                   float* dst, int64_t p0, int64_t p1, int64_t q0, int64_t q1) {
  using PanelFn = void (*)(const ConvGeom&, const Im2colSource&, int64_t, const float*, float*,
                           int64_t, int64_t);
  auto by_step = [&](auto nr_c, auto l_c) -> PanelFn {
    constexpr int R = decltype(nr_c)::value, L = decltype(l_c)::value;
    return in.step == 1 ? im2col_panel<R, 1, L> : in.step == 2 ? im2col_panel<R, 2, L>
                                                               : im2col_panel<R, 0, L>;
  };
  // Output rows narrower than a panel and dividing it: each panel is whole rows.
  auto pick = [&](auto nr_c) -> PanelFn {
    constexpr int R = decltype(nr_c)::value;
    using I = std::integral_constant<int, 0>;
    if (R % g.w.out != 0 || g.w.out >= R) return by_step(nr_c, I{});
    switch (g.w.out) {
      case 1: return by_step(nr_c, std::integral_constant<int, 1>{});
      case 2: return by_step(nr_c, std::integral_constant<int, 2>{});
      case 4: return by_step(nr_c, std::integral_constant<int, 4>{});
      case 8: return by_step(nr_c, std::integral_constant<int, R == 16 ? 8 : 0>{});
      default: return by_step(nr_c, I{});
    }
  };
  PanelFn fn;
  switch (nr) {
    case 8: fn = pick(std::integral_constant<int, 8>{}); break;
    case 16: fn = pick(std::integral_constant<int, 16>{}); break;
    default: fail("conv: no im2col for GEMM panels of ", nr, " columns");
  }
  const int64_t k = cg * g.h.k * g.w.k;
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t pa = p0 + q * nr;
    fn(g, in, cg, x, dst + q * k * nr, pa, std::min(p1, pa + nr));
  }
}

// Whether some window reaches outside the input (then the input is copied with its padding).
inline bool needs_padding(const ConvGeom& g) {
  return g.h.pad_begin > 0 || g.w.pad_begin > 0 || window_extent(g.h) > g.h.in ||
         window_extent(g.w) > g.w.in;
}

// The im2col path: Y_g (M x pixels) = W_g (M x K, packed once) * im2col(X_g) (K x pixels), on
// conv_igemm's engine; im2col writes a few B panels at a time (about 24 KiB, at most 16) for it.
constexpr int64_t kConvGroupFloats = 6 * 1024;
constexpr int64_t kConvMaxGroup = 16;
// Pointwise convs with this many output channels per group (or more) copy their input into
// panels too: enough rows reuse each panel, and the driver's in-place B reads rows a plane
// apart, which for power-of-2 planes all fall in a few cache sets.
constexpr int64_t kPackedPointwiseMinM = 48;
// Below this many multiply-adds a conv runs on one thread (waking a worker costs microseconds).
constexpr double kConvMinParallelMacs = 1 << 17;

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
  int64_t group;     // panels per im2col pass
};

// Row tiles [t0, t1) of W for the output pixels of panels [q0, q1): a few panels of im2col at a
// time into L1-sized scratch, each pass consumed by the micro-kernel for every row tile.
void conv_tiles(const ConvGemm& c, int64_t t0, int64_t t1, int64_t q0, int64_t q1) {
  const int64_t NR = c.kern->nr, ohw = c.g->out_plane();
  float* buf = thread_scratch(0, static_cast<size_t>(c.group * std::max<int64_t>(c.K, 1) * NR));
  for (int64_t q = q0; q < q1; q += c.group) {
    const int64_t gq = std::min(c.group, q1 - q), p0 = q * NR, p1 = std::min(ohw, p0 + gq * NR);
    im2col_panels(static_cast<int>(NR), *c.g, *c.in, c.cg, c.x, buf, p0, p1, 0, gq);
    Epilogue ep = c.ep;
    if (ep.residual) ep.residual += p0;
    conv_gemm_panels(*c.kern, *c.a, t0, t1, buf, gq, p1 - p0 - (gq - 1) * NR, c.y + p0, ohw, &ep);
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
          w_.dilations[0] == 1 && w_.dilations[1] == 1)
        dw2d_ = f32_dwconv2d_kernel(static_cast<int>(kh_), static_cast<int>(w_.strides[0]));
    } else if (weights_.defined()) {
      direct_ = pointwise() && mg < kPackedPointwiseMinM;
      // Winograd also wants finite weights (its transforms would turn an infinity into NaN).
      winograd_ = wshape.size() == 4 &&
                  winograd_suits(kh_, kw_, w_.strides, w_.dilations, cg_, mg) &&
                  all_finite(weights_.ptr<float>(), weights_.numel());
      // Direct pointwise convs run on the GEMM driver (plain packed A), the others on
      // conv_igemm's engine (row tiles; Winograd: 16 transformed matrices per group).
      for (int64_t gi = 0; gi < group_; ++gi) {
        const float* wg = weights_.ptr<float>() + gi * mg * k;
        if (winograd_) {
          for (auto& u : winograd_pack_weights(f32_gemm_kernel(), mg, cg_, wg))
            packed_.push_back(u);
        } else {
          packed_.push_back(direct_ ? pack_a(mg, k, wg, k, false)
                                    : pack_conv_weights(f32_gemm_kernel(), mg, k, wg));
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
               !winograd_conv(g, packed_, x.ptr<float>(), ep, y.ptr<float>(), ctx.pool))
        run_gemm(g, x.ptr<float>(), wt.ptr<float>(), ep, y.ptr<float>(), ctx.pool);
    }
    if (late_residual) {
      add_broadcast_inplace(y, *res, ctx.pool);
      apply_act_inplace(ep_.post_act, ep_.post_alpha, ep_.post_beta, y.ptr<float>(), y.numel());
    }
    out[0] = std::move(y);
  }

  int64_t weight_bytes() const override { return packed_bytes(packed_); }
  std::string describe() const override {
    std::string s;
    if (depthwise_) s = std::string("conv_depthwise ") + (dw2d_ ? dw2d_->name : dw_->name);
    else if (winograd_) s = std::string("conv_winograd ") + f32_winograd_kernel().name;
    else s = std::string(direct_ ? "conv_1x1 " : "conv_im2col ") + f32_gemm_kernel().name;
    if (ep_.act != Act::none) s += std::string(" +") + act_name(ep_.act);
    if (residual_input_ >= 0) s += " +residual";
    if (ep_.post_act != Act::none) s += std::string(" +") + act_name(ep_.post_act);
    return s;
  }

 private:
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
    // Weights given at run time, or Winograd's input had NaN/infinities (packed_ holds its
    // transformed weights): pack for this run.
    std::vector<std::shared_ptr<PackedA>> run_packed;
    if (packed_.empty() || winograd_)
      for (int64_t gi = 0; gi < g.group; ++gi)
        run_packed.push_back(pack_conv_weights(kern, mg, k, wt + gi * mg * k));
    const auto& packed = run_packed.empty() ? packed_ : run_packed;
    // Windows reaching into the padding: im2col reads a zero-bordered copy of the input planes.
    const AxisGeom &H = g.h, &W = g.w;
    Im2colSource in;
    in.step = W.s;
    for (int64_t j = 0; j < W.k; ++j) in.tap.push_back(j * W.d);
    if (needs_padding(g)) {
      const int64_t ph = window_extent(H), pw = window_extent(W);
      in.ld = pw;
      in.plane = ph * pw;
      float* xp = thread_scratch(1, static_cast<size_t>(g.n * g.c * in.plane));
      parallel_for(pool, g.n * g.c, static_cast<double>(in.plane),
                   [&](int64_t c0, int64_t c1) { pad_planes(g, x, xp, c0, c1, ph, pw); });
      in.x = xp;
    } else {
      in.x = x;
      in.plane = g.in_plane();
      in.ld = W.in;
    }
    const int64_t panels = (ohw + kern.nr - 1) / kern.nr, units = g.n * g.group * panels;
    const int64_t group = std::clamp<int64_t>(
        kConvGroupFloats / (std::max<int64_t>(k, 1) * kern.nr), 1, kConvMaxGroup);
    auto gemm_of = [&](int64_t ng) {  // ng = image * groups + group
      const int64_t n = ng / g.group, gi = ng % g.group;
      ConvGemm c{&kern, &g, &in, cg_, mg, k, packed[gi].get(), nullptr, nullptr, ep, group};
      c.x = in.x + (n * g.c + gi * cg_) * in.plane;
      const int64_t yoff = (n * g.m + gi * mg) * ohw;
      c.y = y + yoff;
      if (c.ep.bias) c.ep.bias += gi * mg;
      if (c.ep.residual) c.ep.residual += yoff;
      return c;
    };
    // Units of work: (image, group, panel). Threads take contiguous ranges of units; with too
    // few of them, they split the rows of W instead (each then writes the same im2col panels).
    const int64_t tiles_m = RowTiles(mg, kern.mr).count;
    int threads = pool ? pool->num_threads() : 1;
    if (static_cast<double>(mg) * k * ohw * g.n * g.group < kConvMinParallelMacs) threads = 1;
    auto run_units = [&](int64_t u0, int64_t u1) {
      while (u0 < u1) {
        const int64_t ng = u0 / panels, q = u0 % panels, q1 = std::min(panels, q + (u1 - u0));
        conv_tiles(gemm_of(ng), 0, tiles_m, q, q1);
        u0 += q1 - q;
      }
    };
    if (threads <= 1) {
      run_units(0, units);
    } else if (units >= 2 * threads || tiles_m < threads) {
      pool->parallel_for(units, run_units);
    } else {
      for (int64_t ng = 0; ng < g.n * g.group; ++ng) {
        const ConvGemm c = gemm_of(ng);
        pool->parallel_for(tiles_m, [&](int64_t t0, int64_t t1) {
          conv_tiles(c, t0, t1, 0, panels);
        });
      }
    }
  }

  // Depthwise on the plane kernels: no copy, bias and Relu/Clip applied in the kernel.
  void run_depthwise_planes(const ConvGeom& g, const float* x, const float* wt, const Epilogue& ep,
                            float* y, ThreadPool* pool) const {
    const int64_t taps = kh_ * kw_, ohw = g.out_plane();
    float* zero = thread_scratch(1, static_cast<size_t>(g.w.in));  // read by every thread
    std::memset(zero, 0, sizeof(float) * g.w.in);
    // The clamp covers none/Relu/Clip alone; anything else runs after the kernel.
    const bool fused = !ep.residual && ep.post_act == Act::none &&
                       (ep.act == Act::none || ep.act == Act::relu || ep.act == Act::clip);
    F32Dwconv2dParams base{};
    base.in_h = g.h.in;
    base.in_w = g.w.in;
    base.zero = zero;
    base.out_h = g.h.out;
    base.out_w = g.w.out;
    base.pad_top = g.h.pad_begin;
    base.pad_left = g.w.pad_begin;
    base.clamp = fused && ep.act != Act::none;
    base.lo = ep.act == Act::clip ? ep.alpha : 0.f;
    base.hi = ep.act == Act::clip ? ep.beta : std::numeric_limits<float>::infinity();
    const F32Dwconv2dFn fn = dw2d_->fn;
    parallel_for(pool, g.n * g.c, static_cast<double>(ohw * taps), [&](int64_t p0, int64_t p1) {
      F32Dwconv2dParams prm = base;
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

  void run_depthwise(const ConvGeom& g, const float* x, const float* wt, const Epilogue& ep,
                     float* y, ThreadPool* pool) const {
    const AxisGeom &H = g.h, &W = g.w;
    if (dw2d_ && H.s == W.s && H.s == dw2d_->stride && H.d == 1 && W.d == 1 &&
        H.pad_begin < H.k && W.pad_begin < W.k) {
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
  bool direct_ = false;    // pointwise on the GEMM driver, B = the input planes
  bool winograd_ = false;  // packed_ holds 16 matrices per group
  Tensor weights_, bias_;
  std::vector<std::shared_ptr<PackedA>> packed_;
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
