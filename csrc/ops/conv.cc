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

// dst[t] = src[t * s + off] for t < n where that index lies in [0, len), else 0: one row of a
// padded, strided view of an input row (im2col rows, depthwise phases).
inline void gather_row(float* dst, int64_t n, const float* src, int64_t len, int64_t off, int64_t s) {
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

// The im2col matrix of one image and group, restricted to output pixels [p0, p1): row
// r = (ci, i, j) holds, for each pixel, the input value under window tap (i, j) of channel ci (0 in
// the padding). Rows [r0, r1) are written to col (row stride p1 - p0); x points at the group's
// first input channel.
void im2col(const Geom2& g, const float* x, float* col, int64_t r0, int64_t r1, int64_t p0,
            int64_t p1) {
  const AxisGeom &H = g.h, &W = g.w;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t j = r % W.k, i = (r / W.k) % H.k, ci = r / (W.k * H.k);
    const float* xc = x + ci * g.in_plane();
    float* dst = col + r * (p1 - p0);
    for (int64_t oh = p0 / W.out; oh * W.out < p1; ++oh) {
      const int64_t a = std::max(p0, oh * W.out), b = std::min(p1, (oh + 1) * W.out);
      const int64_t ih = oh * H.s - H.pad_begin + i * H.d;
      float* d = dst + (a - p0);
      if (ih < 0 || ih >= H.in) {
        std::fill(d, d + (b - a), 0.f);
        continue;
      }
      const int64_t ow0 = a - oh * W.out;  // iw = ow * s + j * d - pad
      gather_row(d, b - a, xc + ih * W.in, W.in, ow0 * W.s + j * W.d - W.pad_begin, W.s);
    }
  }
}

// Output pixels per im2col block: the block (K x cols floats) should stay in L2 while the GEMM
// packs and consumes it, right after im2col wrote it.
int64_t block_cols(int64_t k, int64_t pixels) {
  constexpr int64_t kBlockFloats = 48 * 1024;
  const int64_t cols = std::max<int64_t>(128, kBlockFloats / std::max<int64_t>(k, 1) / 16 * 16);
  return std::min(cols, pixels);
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
    const int64_t nb = block_cols(k, ohw), blocks = (ohw + nb - 1) / nb;
    const int threads = pool ? pool->num_threads() : 1;
    // Enough blocks: each thread runs im2col + GEMM on its own blocks (no synchronisation inside);
    // otherwise one block at a time with the threads inside im2col and the GEMM.
    const bool by_block = threads > 1 && blocks >= 2 * threads;
    for (int64_t n = 0; n < g.n; ++n) {
      for (int64_t gi = 0; gi < g.group; ++gi) {
        const float* xg = x + (n * g.c + gi * cg_) * g.in_plane();
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
        if (direct) {
          GemmOperandB b;
          b.data = xg;
          b.ld = ohw;
          f32_gemm(mg, ohw, k, a, b, y + yoff, ohw, e, pool);
          continue;
        }
        // Pixels [p0, p1): im2col into this thread's scratch, then the GEMM on that block.
        auto block = [&](int64_t p0, int64_t p1, ThreadPool* inner) {
          float* col = thread_scratch(0, static_cast<size_t>(k * (p1 - p0)));
          parallel_for(inner, k, static_cast<double>(p1 - p0), [&](int64_t r0, int64_t r1) {
            im2col(g, xg, col, r0, r1, p0, p1);
          });
          GemmOperandB b;
          b.data = col;
          b.ld = p1 - p0;
          Epilogue eb = e;
          if (eb.residual) eb.residual += p0;
          f32_gemm(mg, p1 - p0, k, a, b, y + yoff + p0, ohw, eb, inner);
        };
        if (by_block) {
          pool->parallel_tasks(blocks, [&](int64_t i) {
            block(i * nb, std::min(ohw, (i + 1) * nb), nullptr);
          });
        } else {
          for (int64_t p0 = 0; p0 < ohw; p0 += nb) block(p0, std::min(ohw, p0 + nb), pool);
        }
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
