// Pruned weights as speed: Conv / Gemm / MatMul (FP32, fused forms included) and their exact
// INT8 counterparts (QLinearConv, sliver:QLinearConv, QLinearMatMul, sliver:QLinearMatMul,
// com.microsoft:QGemm, in sparse_q8_ops.cc) on sparse-packed constant weights (sparse.h).
//
// Where the weights sit decides the product:
//  - Conv NCHW: Y[oc, pixels] = W[oc, K] X[K, pixels], weights on the left. A 1x1 stride-1
//    conv reads the input plane as X directly; other windows read a stride-phase grid of the
//    input (zero-padded planes per stride phase, window_gather.h) in place: no im2col. Depthwise
//    convs are stencils, not products: they stay dense.
//  - Gemm / MatMul with a constant B, and the NHWC integer conv (activations [pixels, K], one
//    row per output pixel): Y[rows, N] = X[rows, K] W^T, weights on the right.
// The epilogues are the dense kernels' own: bias, activation, residual and post-activation for
// FP32 (gemm.h's Epilogue); bias + requantization (round half to even, saturation, the fused
// Relu/Clip as a clamp of the codes) on exact int32 sums for INT8 (requant.h), so a layer gives
// the same codes sparse or dense.
//// When sparse runs (the choice, the dense fallback): sparse_ops.h.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ops/common.h"
#include "ops/conv_geometry.h"
#include "ops/conv_igemm.h"
#include "ops/conv_winograd.h"
#include "ops/sparse_ops.h"
#include "ops/window_gather.h"
#include "sliver/kernel.h"
#include "sliver/sparse.h"

namespace sliver::ops {
namespace {

using namespace sparse;  // NOLINT: this file's vocabulary

std::string epilogue_str(const Epilogue& ep, bool residual) {
  std::string s;
  if (ep.act != Act::none) s += std::string(" +") + act_name(ep.act);
  if (residual) s += " +residual";
  if (ep.post_act != Act::none) s += std::string(" +") + act_name(ep.post_act);
  return s;
}

// Adds a residual whose shape differs from y's (broadcast), then the post-activation: what the
// in-kernel epilogue could not do.
void late_residual(const Epilogue& ep, Tensor& y, const Tensor& res, ThreadPool* pool) {
  add_broadcast_inplace(y, res, pool);
  apply_act_inplace(ep.post_act, ep.post_alpha, ep.post_beta, y.ptr<float>(), y.numel());
}

// ---- FP32 Conv, sliver:FusedConv (NCHW, weights on the left) ----

// Floats past a phase grid's last plane: a last tile of NT lanes (up to 64) reads up to NT / 2 - 1
// lanes past the last real output.
constexpr int64_t kGridSlack = 64;

class SparseConvF32 final : public SparseBase {
 public:
  SparseConvF32(const KernelInit& init, Mode mode, ExtentClasses sparse, CostNote note,
                WindowAttrs w, int64_t group, Shape wshape, const Epilogue& ep,
                int residual_input, std::vector<std::shared_ptr<SparseF32Weights>> packed)
      : SparseBase(init, mode, sparse, note), w_(std::move(w)), group_(group),
        wshape_(std::move(wshape)), ep_(ep), residual_input_(residual_input),
        packed_(std::move(packed)) {
    if (init.has_input(2) && init.is_const(2)) bias_ = init.const_inputs[2];
    // A static input shape fixes the grid: resolve every entry's offset once (the kernels then
    // read one offset per entry instead of an index and a lookup).
    if (!init.input_shapes.empty() && init.input_shapes[0].known &&
        init.input_shapes[0].dims.size() == wshape_.size()) {
      const Shape& d = init.input_shapes[0].dims;
      const Window2 g = window_of(d);
      PhaseGrid pg;
      if (!direct(g) && make_phase_grid(g, wshape_[1], &pg)) {
        static_dims_ = d;
        for (const auto& w : packed_) eoff_.push_back(resolve_grid_offsets(*w, pg.koff.data()));
      }
    }
  }

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    const size_t nsp = wshape_.size() - 2;
    if (x.dtype != DType::f32 || x.rank() != static_cast<int64_t>(nsp) + 2)
      fail("expected a float input of rank ", nsp + 2, ", got ", shape_str(x.shape));
    const int64_t m = wshape_[0], cg = wshape_[1];
    if (x.shape[1] != cg * group_)
      fail("input has ", x.shape[1], " channels, weights expect ", cg, " x ", group_, " groups");
    const Window2 g = window_of(x.shape);
    if (!use_sparse(g.out_plane())) return run_dense(ctx, in, out);
    const Tensor* bias = bias_.defined() ? &bias_ : opt(in, 2);
    const Tensor* res = residual_input_ >= 0 ? opt(in, residual_input_) : nullptr;
    if (bias && (bias->dtype != DType::f32 || bias->numel() != m))
      fail("bias must be float[", m, "], got ", shape_str(bias->shape));
    Shape yshape = {x.shape[0], m};
    if (nsp == 2) yshape.push_back(g.h.out);
    yshape.push_back(g.w.out);
    Tensor y = Tensor::empty(DType::f32, yshape);
    Epilogue ep = ep_;
    ep.bias = bias ? bias->ptr<float>() : nullptr;
    ep.bias_per_row = true;
    const bool late = res && res->shape != yshape;
    if (res && !late) {
      if (res->dtype != DType::f32) fail("residual must be float");
      ep.residual = res->ptr<float>();
      ep.ld_residual = g.out_plane();
    }
    if (late) ep.post_act = Act::none;
    if (y.numel() > 0) compute(g, x, ep, y, ctx.pool);
    if (late) late_residual(ep_, y, *res, ctx.pool);
    out[0] = std::move(y);
  }

  std::string describe() const override {
    return std::string("sparse f32_spmm_left ") + (pointwise() ? "conv_1x1 " : "conv_grid ") +
           layout_str(packed_, false) + epilogue_str(ep_, residual_input_ >= 0) +
           extent_note("pixels", false);
  }
  int64_t weight_bytes() const override {
    int64_t resolved = 0;
    for (const auto& e : eoff_) resolved += static_cast<int64_t>(e.size() * sizeof(int32_t));
    return total_bytes(packed_) + resolved + fallback_bytes();
  }

 private:
  bool pointwise() const {
    if (wshape_.back() != 1 || (wshape_.size() == 4 && wshape_[2] != 1)) return false;
    for (int64_t s : w_.strides)
      if (s != 1) return false;
    for (int64_t p : w_.pads)
      if (p != 0 && w_.auto_pad == "NOTSET") return false;
    return true;
  }

  Window2 window_of(const Shape& dims) const {
    const size_t nsp = wshape_.size() - 2;
    Window2 g;
    g.h = nsp == 2 ? resolve_axis(w_, 0, dims[2]) : AxisGeom{1, 1, 1, 1, 1, 0, 0};
    g.w = resolve_axis(w_, nsp - 1, dims.back());
    return g;
  }

  // A 1x1 window that reads the input planes as they are.
  static bool direct(const Window2& g) {
    return g.h.k == 1 && g.w.k == 1 && g.h.s == 1 && g.w.s == 1 && g.h.pad_begin == 0 &&
           g.w.pad_begin == 0 && g.h.out == g.h.in && g.w.out == g.w.in;
  }

  void compute(const Window2& g, const Tensor& x, const Epilogue& ep, Tensor& y,
               ThreadPool* pool) const {
    const int64_t n_img = x.shape[0], c = x.shape[1], m = wshape_[0];
    const int64_t mg = m / group_, cg = wshape_[1], ohw = g.out_plane();
    const bool direct = SparseConvF32::direct(g);
    // Offsets resolved at creation hold for the shape they were made for (same H and W).
    const bool resolved = !eoff_.empty() && x.shape.size() == static_dims_.size() &&
                          std::equal(x.shape.begin() + 2, x.shape.end(), static_dims_.begin() + 2);
    // Other windows read a stride-phase grid of the input (window_gather.h), one per image and
    // group, plus a tile's worth of slack that the last tile's whole vectors read. The grid is
    // per-thread scratch (a fresh buffer per run page-faulted ~4% of a pruned ResNet-18's run);
    // every grid value is written below, only the slack needs zeros.
    PhaseGrid pg;
    float* planes = nullptr;
    if (!direct) {
      if (!make_phase_grid(g, cg, &pg)) fail("input too large for the sparse conv's grid");
      const size_t values = static_cast<size_t>(pg.values(cg));
      planes = thread_scratch(0, values + kGridSlack);
      std::fill(planes + values, planes + values + kGridSlack, 0.f);
    }
    for (int64_t n = 0; n < n_img; ++n) {
      for (int64_t gi = 0; gi < group_; ++gi) {
        const float* xg = x.ptr<float>() + (n * c + gi * cg) * g.in_plane();
        const SparseF32Weights& w = *packed_[gi];
        Epilogue e = ep;
        if (e.bias) e.bias += gi * mg;
        const int64_t yoff = (n * m + gi * mg) * ohw;
        if (e.residual) e.residual += yoff;
        float* yg = y.ptr<float>() + yoff;
        if (direct) {
          f32_spmm_left(w, ohw, xg, g.in_plane(), yg, ohw, e, pool);
          continue;
        }
        parallel_for(pool, cg, static_cast<double>(pg.values(1)), [&](int64_t c0, int64_t c1) {
          fill_phase_grid(g, pg, xg, c0, c1, 0.f, planes);
        });
        F32Grid grid;
        grid.x = planes;
        grid.koff = pg.koff.data();
        grid.width = pg.width;
        grid.valid = g.w.out;
        if (resolved) grid.eoff = eoff_[static_cast<size_t>(gi)].data();
        f32_spmm_left_grid(w, (g.h.out - 1) * pg.width + g.w.out, grid, yg, ohw, e, pool);
      }
    }
  }

  WindowAttrs w_;
  int64_t group_;
  Shape wshape_;
  Epilogue ep_;
  int residual_input_;
  std::vector<std::shared_ptr<SparseF32Weights>> packed_;
  Tensor bias_;
  Shape static_dims_;                       // the static input shape eoff_ was resolved for
  std::vector<std::vector<int32_t>> eoff_;  // per group: F32Grid::eoff
};

template <bool kFused>
std::unique_ptr<Kernel> make_sparse_conv_f32(const KernelInit& init) {
  const Mode mode = read_mode(init);
  if (mode == Mode::dense) return nullptr;
  if (init.num_inputs() < 2 || init.num_outputs() != 1 || !init.is_const(1)) return nullptr;
  if (!kFused && init.num_inputs() > 3) return nullptr;
  if (!only_attrs(init.attrs, {SLIVER_CONV_ATTRS, SLIVER_FUSED_ATTRS})) return nullptr;
  for (int i = 0; i < init.num_inputs(); ++i)
    if (init.has_input(i) && init.input_dtypes[i] != DType::f32) return nullptr;
  const Tensor& wt = init.const_inputs[1];
  const Shape& ws = wt.shape;
  if (wt.dtype != DType::f32 || (ws.size() != 3 && ws.size() != 4) || wt.numel() == 0)
    return nullptr;
  const size_t nsp = ws.size() - 2;
  WindowAttrs w;
  const Shape kernel(ws.begin() + 2, ws.end());
  if (!w.read(init.attrs, nsp, kernel) || w.kernel != kernel || w.ceil_mode) return nullptr;
  const int64_t group = init.attrs.get_int("group", 1);
  if (group < 1 || ws[0] % group != 0) return nullptr;
  if (ws[1] == 1 && ws[0] == group && group > 1) return nullptr;  // depthwise: a stencil
  Epilogue ep;
  if (kFused && !fused_epilogue(init.attrs, &ep)) return nullptr;
  auto all_are = [](const std::vector<int64_t>& v, int64_t x) {
    return std::all_of(v.begin(), v.end(), [x](int64_t e) { return e == x; });
  };
  const bool pointwise = all_are(kernel, 1) && all_are(w.strides, 1) && all_are(w.pads, 0);
  const int64_t mg = ws[0] / group, k = wt.numel() / ws[0];
  // The dense path conv.cc takes (its Winograd also wants finite weights).
  DensePath dense = DensePath::conv_im2col;
  if (pointwise) {
    dense = DensePath::conv_1x1;
  } else if (nsp == 2 && winograd_suits(ws[2], ws[3], w.strides, w.dilations, ws[1], mg) &&
             all_finite(wt.ptr<float>(), wt.numel())) {
    dense = DensePath::conv_winograd;
  }
  if (mode == Mode::automatic &&
      nonzero_fraction_f32(wt.ptr<float>(), wt.numel()) > max_density(false, dense))
    return nullptr;
  // Static output pixels per image, when the input's spatial dims are known.
  int64_t pixels = -1;
  if (static_extent(init, 0, 2, -1) > 0 && init.input_shapes[0].dims.size() == nsp + 2) {
    const Shape& xd = init.input_shapes[0].dims;
    const int64_t oh = nsp == 2 ? resolve_axis(w, 0, xd[2]).out : 1;
    pixels = oh * resolve_axis(w, nsp - 1, xd.back()).out;
  }
  SparsePackOptions po;
  po.cols = std::max<int64_t>(pixels, 0);
  std::vector<std::shared_ptr<SparseF32Weights>> packed;
  for (int64_t gi = 0; gi < group; ++gi)
    packed.push_back(pack_sparse_f32(mg, k, wt.ptr<float>() + gi * mg * k, k, 1, po));
  const ExtentClasses sparse = sparse_extents(packed, dense);
  if (!worth_building(mode, sparse, pixels)) return nullptr;
  return std::make_unique<SparseConvF32>(init, mode, run_time_extents(sparse, pixels),
                                         cost_note(packed, pixels, dense), std::move(w), group,
                                         ws, ep,
                                         kFused && init.has_input(3) ? 3 : -1, std::move(packed));
}

// ---- FP32 Gemm / MatMul and fused forms (constant B, weights on the right) ----

// beta * C as a per-column bias of N values, when C is a scalar or a row ([N], [1, N]).
bool column_bias(const Tensor& c, int64_t n, float beta, std::vector<float>* bias) {
  if (c.dtype != DType::f32) return false;
  const int64_t rows = c.rank() >= 2 ? shape_numel(Shape(c.shape.begin(), c.shape.end() - 1)) : 1;
  if (c.numel() == 1) {
    bias->assign(static_cast<size_t>(n), beta * c.ptr<float>()[0]);
  } else if (c.numel() == n && rows == 1) {
    bias->resize(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) (*bias)[j] = beta * c.ptr<float>()[j];
  } else {
    return false;
  }
  return true;
}

class SparseLinearF32 final : public SparseBase {
 public:
  SparseLinearF32(const KernelInit& init, Mode mode, ExtentClasses sparse, CostNote note,
                  bool gemm, const Epilogue& ep, int residual_input, float beta,
                  std::shared_ptr<SparseF32Weights> w)
      : SparseBase(init, mode, sparse, note), gemm_(gemm), ep_(ep),
        residual_input_(residual_input), beta_(beta), w_(std::move(w)) {
    if (init.has_input(2) && init.is_const(2)) {
      if (gemm_) {
        if (beta_ != 0.f) column_bias(init.const_inputs[2], w_->out, beta_, &bias_);
      } else {
        const Tensor& b = init.const_inputs[2];
        bias_.assign(b.ptr<float>(), b.ptr<float>() + b.numel());
      }
      bias_const_ = true;
    }
  }

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& a = need(in, 0);
    const int64_t K = w_->in, N = w_->out;
    if (a.dtype != DType::f32) fail("A must be float, got ", dtype_name(a.dtype));
    if (a.rank() < 1 || a.shape.back() != K || (gemm_ && a.rank() != 2))
      fail("A ", shape_str(a.shape), " does not match the weights' K=", K);
    const int64_t rows = a.numel() / K;
    if (!use_sparse(rows)) return run_dense(ctx, in, out);
    std::vector<float> run_bias;
    const float* bias = bias_.empty() ? nullptr : bias_.data();
    const Tensor* c = opt(in, 2);
    if (!bias_const_ && c && c->numel() > 0) {
      if (gemm_) {
        if (beta_ != 0.f && !column_bias(*c, N, beta_, &run_bias))
          return run_dense(ctx, in, out);  // a per-row or full C: the dense kernel's broadcast
      } else if (c->dtype != DType::f32 || c->numel() != N) {
        fail("bias must be float[", N, "], got ", shape_str(c->shape));
      } else {
        run_bias.assign(c->ptr<float>(), c->ptr<float>() + N);
      }
      if (!run_bias.empty()) bias = run_bias.data();
    }
    Shape yshape(a.shape.begin(), a.shape.end() - 1);
    yshape.push_back(N);
    Tensor y = Tensor::empty(DType::f32, yshape);
    const Tensor* res = residual_input_ >= 0 ? opt(in, residual_input_) : nullptr;
    Epilogue ep = ep_;
    ep.bias = bias;
    ep.bias_per_row = false;
    const bool late = res && res->shape != yshape;
    if (res && !late) {
      if (res->dtype != DType::f32) fail("residual must be float");
      ep.residual = res->ptr<float>();
      ep.ld_residual = N;
    }
    if (late) ep.post_act = Act::none;
    f32_spmm_right(*w_, rows, a.ptr<float>(), K, y.ptr<float>(), N, ep, ctx.pool);
    if (late) late_residual(ep_, y, *res, ctx.pool);
    out[0] = std::move(y);
  }

  std::string describe() const override {
    return std::string("sparse f32_spmm_right ") + (gemm_ ? "gemm " : "matmul ") +
           layout_str(std::vector<std::shared_ptr<SparseF32Weights>>{w_}, false) +
           epilogue_str(ep_, residual_input_ >= 0) + extent_note("rows", false);
  }
  int64_t weight_bytes() const override { return w_->bytes() + fallback_bytes(); }

 private:
  bool gemm_;
  Epilogue ep_;
  int residual_input_;
  float beta_;
  std::shared_ptr<SparseF32Weights> w_;
  std::vector<float> bias_;
  bool bias_const_ = false;
};

template <bool kGemm, bool kFused>
std::unique_ptr<Kernel> make_sparse_linear_f32(const KernelInit& init) {
  const Mode mode = read_mode(init);
  if (mode == Mode::dense) return nullptr;
  if (init.num_inputs() < 2 || init.num_outputs() != 1 || !init.is_const(1)) return nullptr;
  if (!kFused && init.num_inputs() > (kGemm ? 3 : 2)) return nullptr;
  if (!only_attrs(init.attrs, {"alpha", "beta", "transA", "transB", SLIVER_FUSED_ATTRS}) ||
      (!kGemm && (init.attrs.has("alpha") || init.attrs.has("beta") || init.attrs.has("transA") ||
                  init.attrs.has("transB"))))
    return nullptr;
  for (int i = 0; i < init.num_inputs(); ++i)
    if (init.has_input(i) && init.input_dtypes[i] != DType::f32) return nullptr;
  const Tensor& b = init.const_inputs[1];
  if (b.dtype != DType::f32 || b.rank() != 2 || b.numel() == 0) return nullptr;
  Epilogue ep;
  if (kFused && !fused_epilogue(init.attrs, &ep)) return nullptr;
  float alpha = 1.f, beta = 1.f;
  bool trans_b = false;
  if (kGemm) {
    if (init.attrs.get_int("transA", 0) != 0) return nullptr;
    alpha = static_cast<float>(init.attrs.get_float("alpha", 1.0));
    beta = static_cast<float>(init.attrs.get_float("beta", 1.0));
    trans_b = init.attrs.get_int("transB", 0) != 0;
  }
  const int64_t K = trans_b ? b.shape[1] : b.shape[0], N = trans_b ? b.shape[0] : b.shape[1];
  if (init.has_input(2) && init.is_const(2)) {  // a bias that is not per column: dense
    const Tensor& c = init.const_inputs[2];
    std::vector<float> tmp;
    if (kGemm && beta != 0.f && c.numel() > 0 && !column_bias(c, N, beta, &tmp)) return nullptr;
    if (!kGemm && (c.numel() != N)) return nullptr;
  }
  if (mode == Mode::automatic &&
      nonzero_fraction_f32(b.ptr<float>(), b.numel()) > max_density(false, DensePath::gemm))
    return nullptr;
  std::vector<float> scaled;
  const float* src = b.ptr<float>();
  if (alpha != 1.f) {
    scaled.assign(src, src + b.numel());
    for (float& v : scaled) v *= alpha;
    src = scaled.data();
  }
  const int64_t rows = static_rows(init);
  SparsePackOptions po;
  po.cols = std::max<int64_t>(rows, 0);
  // W as [out = N, in = K]: B [K, N] has (n, k) at k * N + n; B^T [N, K] at n * K + k.
  auto w = trans_b ? pack_sparse_f32(N, K, src, K, 1, po) : pack_sparse_f32(N, K, src, 1, N, po);
  const std::vector<std::shared_ptr<SparseF32Weights>> ws{w};
  const ExtentClasses sparse = sparse_extents(ws, DensePath::gemm);
  if (!worth_building(mode, sparse, rows)) return nullptr;
  return std::make_unique<SparseLinearF32>(init, mode, run_time_extents(sparse, rows),
                                           cost_note(ws, rows, DensePath::gemm), kGemm, ep,
                                           kFused && init.has_input(3) ? 3 : -1, beta,
                                           std::move(w));
}

}  // namespace

SLIVER_REGISTER_KERNEL_PRIORITY("Conv", make_sparse_conv_f32<false>, kSparsePriority);
SLIVER_REGISTER_KERNEL_PRIORITY("sliver:FusedConv", make_sparse_conv_f32<true>,
                                kSparsePriority);
SLIVER_REGISTER_KERNEL_PRIORITY("Gemm", (make_sparse_linear_f32<true, false>), kSparsePriority);
SLIVER_REGISTER_KERNEL_PRIORITY("sliver:FusedGemm", (make_sparse_linear_f32<true, true>),
                                kSparsePriority);
SLIVER_REGISTER_KERNEL_PRIORITY("MatMul", (make_sparse_linear_f32<false, false>),
                                kSparsePriority);
SLIVER_REGISTER_KERNEL_PRIORITY("sliver:FusedMatMul", (make_sparse_linear_f32<false, true>),
                                kSparsePriority);

}  // namespace sliver::ops
