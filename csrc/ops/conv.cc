// Conv (1-D and 2-D, groups, pads/strides/dilations/auto_pad, bias) and sliver:FusedConv.
//
// Three paths, chosen per node:
//  - depthwise (one input and one output channel per group): a stencil per channel plane on the
//    f32_dwconv row kernels; padding and stride become tap pointers into a padded copy.
//  - pointwise (1x1 window, stride 1, no padding): the input plane already is the GEMM's B
//    (C_in x H*W), so Y_g = W_g * X_g with no copy at all.
//  - general: im2col writes, per image and group, the K = C_in/g * kh * kw window values of every
//    output pixel as a K x (OH*OW) matrix, and the GEMM multiplies the packed weights (M_g x K)
//    by it. Bias, activation and residual ride in the GEMM epilogue, so Y is written once.
// Layout NCHW throughout; 1-D convs run as 2-D with H = 1.
#include "ops/common.h"
#include "ops/conv_geometry.h"
#include "ukernels/f32_dwconv/f32_dwconv.h"

namespace sliver::ops {
namespace {

struct Geom2 {
  int64_t n, c, m, group;
  AxisGeom h, w;
  int64_t in_plane() const { return h.in * w.in; }
  int64_t out_plane() const { return h.out * w.out; }
};

// Rows (ci, i, j) of the im2col matrix for one image and group, rows [r0, r1); x points at the
// group's first input channel, col has ld = OH*OW.
void im2col_rows(const Geom2& g, const float* x, float* col, int64_t r0, int64_t r1) {
  const AxisGeom &H = g.h, &W = g.w;
  const int64_t ohw = g.out_plane();
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t j = r % W.k, i = (r / W.k) % H.k, ci = r / (W.k * H.k);
    const float* xc = x + ci * g.in_plane();
    float* dst = col + r * ohw;
    // Output columns whose input column lies inside the image: [ow_lo, ow_hi).
    const int64_t off = j * W.d - W.pad_begin;  // iw = ow * s + off
    const int64_t ow_lo = off >= 0 ? 0 : std::min(W.out, (-off + W.s - 1) / W.s);
    const int64_t ow_hi = std::max(ow_lo, std::min(W.out, off >= W.in ? 0 : (W.in - 1 - off) / W.s + 1));
    for (int64_t oh = 0; oh < H.out; ++oh, dst += W.out) {
      const int64_t ih = oh * H.s - H.pad_begin + i * H.d;
      if (ih < 0 || ih >= H.in) {
        std::fill(dst, dst + W.out, 0.f);
        continue;
      }
      const float* src = xc + ih * W.in + off;
      std::fill(dst, dst + ow_lo, 0.f);
      if (W.s == 1) {
        std::copy(src + ow_lo, src + ow_hi, dst + ow_lo);
      } else {
        for (int64_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow] = src[ow * W.s];
      }
      std::fill(dst + ow_hi, dst + W.out, 0.f);
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
    } else if (weights_.defined()) {
      for (int64_t gi = 0; gi < group_; ++gi)
        packed_.push_back(pack_a(mg, k, weights_.ptr<float>() + gi * mg * k, k, false));
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
    if (wt.shape != wshape_) fail("weights of shape ", shape_str(wt.shape), ", expected ", shape_str(wshape_));
    Geom2 g;
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
      if (depthwise_) run_depthwise(g, x.ptr<float>(), wt.ptr<float>(), ep, y.ptr<float>(), ctx.pool);
      else run_gemm(g, x.ptr<float>(), wt.ptr<float>(), ep, y.ptr<float>(), ctx.pool);
    }
    if (late_residual) {
      add_broadcast_inplace(y, *res, ctx.pool);
      apply_act_inplace(ep_.post_act, ep_.post_alpha, ep_.post_beta, y.ptr<float>(), y.numel());
    }
    out[0] = std::move(y);
  }

  std::string describe() const override {
    std::string s;
    if (depthwise_) s = std::string("conv_depthwise ") + dw_->name;
    else s = std::string(pointwise() ? "conv_1x1 " : "conv_im2col ") + f32_gemm_kernel().name;
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

  void run_gemm(const Geom2& g, const float* x, const float* wt, const Epilogue& ep, float* y,
                ThreadPool* pool) const {
    const int64_t mg = g.m / g.group, k = cg_ * kh_ * kw_, ohw = g.out_plane();
    const bool direct = pointwise() && g.h.pad_begin == 0 && g.w.pad_begin == 0 &&
                        g.h.out == g.h.in && g.w.out == g.w.in;
    float* col = direct ? nullptr : thread_scratch(0, static_cast<size_t>(k * ohw));
    for (int64_t n = 0; n < g.n; ++n) {
      for (int64_t gi = 0; gi < g.group; ++gi) {
        const float* xg = x + (n * g.c + gi * cg_) * g.in_plane();
        GemmOperandB b;
        b.ld = ohw;
        if (direct) {
          b.data = xg;
        } else {
          parallel_for(pool, k, static_cast<double>(ohw), [&](int64_t r0, int64_t r1) {
            im2col_rows(g, xg, col, r0, r1);
          });
          b.data = col;
        }
        GemmOperandA a;
        if (!packed_.empty()) {
          a.packed = packed_[gi].get();
        } else {
          a.data = wt + gi * mg * k;
          a.ld = k;
        }
        Epilogue e = ep;
        if (e.bias) e.bias += gi * mg;
        const int64_t yoff = (n * g.m + gi * mg) * ohw;
        if (e.residual) e.residual += yoff;
        f32_gemm(mg, ohw, k, a, b, y + yoff, ohw, e, pool);
      }
    }
  }

  void run_depthwise(const Geom2& g, const float* x, const float* wt, const Epilogue& ep, float* y,
                     ThreadPool* pool) const {
    const AxisGeom &H = g.h, &W = g.w;
    const int64_t taps = kh_ * kw_, ohw = g.out_plane();
    // Extent of input rows/columns the windows touch, counted from the top-left padding corner.
    const int64_t ph = (H.out - 1) * H.s + (H.k - 1) * H.d + 1;
    const int64_t pw = (W.out - 1) * W.s + (W.k - 1) * W.d + 1;
    const bool direct = H.pad_begin == 0 && W.pad_begin == 0 && W.s == 1 && ph <= H.in && pw <= W.in;
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
          // Padded plane split into W.s column phases: phase q, row r, column jj holds padded
          // column jj * s + q, so each tap reads adjacent floats.
          float* buf = thread_scratch(0, static_cast<size_t>(W.s * ph * phase_w));
          for (int64_t q = 0; q < W.s; ++q) {
            for (int64_t r = 0; r < ph; ++r) {
              float* dst = buf + (q * ph + r) * phase_w;
              const int64_t ih = r - H.pad_begin;
              if (ih < 0 || ih >= H.in) {
                std::fill(dst, dst + phase_w, 0.f);
                continue;
              }
              const float* xr = xp + ih * W.in;
              for (int64_t jj = 0; jj < phase_w; ++jj) {
                const int64_t iw = jj * W.s + q - W.pad_begin;
                dst[jj] = iw >= 0 && iw < W.in ? xr[iw] : 0.f;
              }
            }
          }
          src = buf;
          row_stride = phase_w;
        }
        float* yp = y + p * ohw;
        const float bias = ep.bias ? ep.bias[ch] : 0.f;
        for (int64_t oh = 0; oh < H.out; ++oh) {
          for (int64_t i = 0; i < H.k; ++i) {
            const int64_t r = oh * H.s + i * H.d;
            for (int64_t j = 0; j < W.k; ++j) {
              const int64_t c0 = j * W.d;
              tp[i * W.k + j] = direct ? src + r * row_stride + c0
                                       : src + ((c0 % W.s) * ph + r) * row_stride + c0 / W.s;
            }
          }
          fn(W.out, static_cast<int>(taps), tp.data(), wt + ch * taps, bias, yp + oh * W.out);
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
  return std::make_unique<ConvKernel>(std::move(w), group, wshape, init, ep, kFused ? 3 : -1);
}
SLIVER_REGISTER_KERNEL("Conv", make_conv<false>);
SLIVER_REGISTER_KERNEL("sliver:FusedConv", make_conv<true>);

}  // namespace
}  // namespace sliver::ops
