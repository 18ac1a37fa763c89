// Exact INT8 kernels on sparse-packed constant weights (sparse.h): QLinearMatMul,
// sliver:QLinearMatMul and com.microsoft:QGemm (weights on the right), QLinearConv and
// sliver:QLinearConv (NCHW: weights on the left on im2col panels; NHWC: activations [pixels, K]
// with the weights permuted to the im2row order, on the right). The
// exact int32 sums and the per-channel requantization (requant.h: onnx.reference's order for
// the ONNX and sliver ops, onnxruntime's for QGemm) are the dense kernels', so the codes are
// identical. When sparse runs (the choice, the dense fallback): sparse_ops.h.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ops/common.h"
#include "ops/q8_conv.h"
#include "ops/quant_util.h"
#include "ops/sparse_ops.h"
#include "ops/window_gather.h"
#include "sliver/kernel.h"
#include "sliver/qgemm.h"
#include "sliver/sparse.h"

namespace sliver::ops {
namespace {

using namespace sparse;  // NOLINT: this file's vocabulary

// ---- INT8: shared parameter reading ----

// [lo, hi] from activation_min/activation_max (sliver's QDQ ops), within the code type's range.
bool read_clamp(const Attrs& a, DType t, int32_t* lo, int32_t* hi) {
  const int32_t qmin = t == DType::u8 ? 0 : -128, qmax = qmin + 255;
  *lo = static_cast<int32_t>(a.get_int("activation_min", qmin));
  *hi = static_cast<int32_t>(a.get_int("activation_max", qmax));
  return *lo >= qmin && *hi <= qmax && *lo <= *hi;
}

// The output code type of sliver's QDQ ops: y_zero_point's constant type, else the static one.
DType sliver_output_type(const KernelInit& init, int zp_index) {
  DType t = q::q8_dtype(init, zp_index, zp_index);
  if (!q::is_q8(t) && !init.output_dtypes.empty()) t = init.output_dtypes[0];
  return t;
}

// What differs between the 8-bit ops around one exact product: where their inputs are, the
// output type rule, the clamp, the rounding order.
enum class Q8Op { qlinear, sliver_qlinear, qgemm };

struct Q8OutSpec {
  Q8Op op = Q8Op::qlinear;
  const char* name = "";
  DType y_type = DType::undefined;  // fixed at creation (sliver ops), else a fallback
  int32_t lo = 0, hi = 255;         // sliver ops: the fused clamp
  float alpha = 1.f;                // QGemm
};

// Fills the output part of a (per output channel) QGemmArgs from the run's inputs and returns
// the output dtype. Inputs: a_scale 1, a_zero_point 2, b_scale 4, y_scale 6 (QGemm: 7),
// y_zero_point 7 (QGemm: 8). b_scale is stored in `b_scale` (N values).
DType fill_q8_output(const Q8OutSpec& s, const std::vector<const Tensor*>& in, DType a_type,
                     int64_t n, std::vector<float>* b_scale, QGemmArgs* g) {
  g->a_zero_point = q::scalar_zp(opt(in, 2), "a_zero_point");
  const float a_scale = q::scalar_f32(need(in, 1), "a_scale");
  *b_scale = q::scale_values(need(in, 4), n, "b_scale");
  g->b_scale_per_column = true;
  if (s.op == Q8Op::qgemm) {
    const Tensor* ys = opt(in, 7);
    const Tensor* yz = opt(in, 8);
    const float sa = s.alpha * a_scale;
    if (!yz) {  // float output: acc * (a_scale * b_scale[n] (/ y_scale)), onnxruntime's order
      for (float& v : *b_scale) v = ys ? sa * v / q::scalar_f32(*ys, "y_scale") : sa * v;
      g->output = QGemmOutput::float32;
      g->a_scale = 1.f;
      g->b_scale = b_scale->data();
      return DType::f32;
    }
    if (!q::is_q8(yz->dtype)) fail("y_zero_point type ", dtype_name(yz->dtype));
    g->output = QGemmOutput::quantized;
    g->a_scale = sa;
    g->b_scale = b_scale->data();
    g->y_scale = ys ? q::scalar_f32(*ys, "y_scale") : 1.f;
    g->y_zero_point = q::scalar_zp(yz, "y_zero_point");
    g->y_type = yz->dtype;
    g->qmin = yz->dtype == DType::u8 ? 0 : -128;
    g->qmax = g->qmin + 255;
    g->rounding = RequantRounding::onnxruntime;
    return yz->dtype;
  }
  const Tensor* yz = opt(in, 7);
  DType yt = s.y_type;
  if (s.op == Q8Op::qlinear && yz) yt = yz->dtype;
  if (yt == DType::undefined) yt = a_type;
  if (!q::is_q8(yt)) fail("output type ", dtype_name(yt), " not handled");
  g->output = QGemmOutput::quantized;
  g->a_scale = a_scale;
  g->b_scale = b_scale->data();
  g->y_scale = q::scalar_f32(need(in, 6), "y_scale");
  g->y_zero_point = q::scalar_zp(yz, "y_zero_point");
  g->y_type = yt;
  g->qmin = s.op == Q8Op::sliver_qlinear ? s.lo : (yt == DType::u8 ? 0 : -128);
  g->qmax = s.op == Q8Op::sliver_qlinear ? s.hi : (yt == DType::u8 ? 255 : 127);
  g->rounding = RequantRounding::onnx_reference;
  return yt;
}

// ---- INT8 QLinearMatMul, sliver:QLinearMatMul, QGemm (constant B, weights on the right) ----

class SparseLinearQ8 final : public SparseBase {
 public:
  SparseLinearQ8(const KernelInit& init, Mode mode, ExtentClasses sparse, CostNote note,
                 Q8OutSpec spec,
                 std::vector<int32_t> bias, std::shared_ptr<SparseQ8Weights> w)
      : SparseBase(init, mode, sparse, note), spec_(spec), bias_(std::move(bias)),
        w_(std::move(w)) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& a = need(in, 0);
    const int64_t K = w_->in, N = w_->out;
    if (!q::is_q8(a.dtype)) fail("A must be uint8 or int8, got ", dtype_name(a.dtype));
    if (a.rank() < 1 || a.shape.back() != K || (spec_.op == Q8Op::qgemm && a.rank() != 2))
      fail("A ", shape_str(a.shape), " does not match the weights' K=", K);
    const int64_t rows = a.numel() / K;
    if (!use_sparse(rows)) return run_dense(ctx, in, out);
    QGemmArgs g;
    std::vector<float> b_scale;
    const DType yt = fill_q8_output(spec_, in, a.dtype, N, &b_scale, &g);
    Shape yshape(a.shape.begin(), a.shape.end() - 1);
    yshape.push_back(N);
    out[0] = Tensor::empty(yt, yshape);
    g.M = rows;
    g.a = a.data;
    g.a_type = a.dtype;
    g.lda = K;
    g.c = out[0].data;
    g.ldc = N;
    g.bias = bias_.empty() ? nullptr : bias_.data();
    q8_spmm_right(g, *w_, ctx.pool);
  }

  std::string describe() const override {
    return std::string("sparse q8_spmm_right ") + spec_.name + " " +
           layout_str(std::vector<std::shared_ptr<SparseQ8Weights>>{w_}, true) +
           extent_note("rows", true);
  }
  int64_t weight_bytes() const override { return w_->bytes() + fallback_bytes(); }

 private:
  Q8OutSpec spec_;
  std::vector<int32_t> bias_;
  std::shared_ptr<SparseQ8Weights> w_;
};

template <Q8Op kOp>
std::unique_ptr<Kernel> make_sparse_linear_q8(const KernelInit& init) {
  const Mode mode = read_mode(init);
  if (mode == Mode::dense) return nullptr;
  const bool qgemm = kOp == Q8Op::qgemm;
  if (init.num_inputs() < (qgemm ? 6 : 7) || init.num_outputs() != 1) return nullptr;
  if (!init.is_const(3) || !q::const_or_missing(init, 5) || (qgemm && !init.is_const(5)))
    return nullptr;
  const bool attrs_ok =
      kOp == Q8Op::qlinear ? init.attrs.values.empty()
      : kOp == Q8Op::qgemm ? only_attrs(init.attrs, {"alpha", "transA", "transB"})
                           : only_attrs(init.attrs, {"transB", "activation_min", "activation_max"});
  if (!attrs_ok) return nullptr;
  const Tensor& b = init.const_inputs[3];
  if (!q::is_q8(b.dtype) || b.rank() != 2 || b.numel() == 0) return nullptr;
  const DType at = q::q8_dtype(init, 0, 2);
  if (at != DType::undefined && !q::is_q8(at)) return nullptr;
  const bool trans_b = kOp != Q8Op::qlinear && init.attrs.get_int("transB", 0) != 0;
  if (qgemm && init.attrs.get_int("transA", 0) != 0) return nullptr;
  const int64_t K = trans_b ? b.shape[1] : b.shape[0], N = trans_b ? b.shape[0] : b.shape[1];
  // Per-tensor activation parameters only (per-row ones are no GEMM epilogue).
  for (int i : qgemm ? std::vector<int>{1, 2, 7, 8} : std::vector<int>{1, 2, 6, 7})
    if (init.has_input(i) && init.is_const(i) && init.const_inputs[i].numel() != 1) return nullptr;
  if (init.has_input(4) && init.is_const(4) && init.const_inputs[4].numel() != 1 &&
      init.const_inputs[4].numel() != N)
    return nullptr;
  const Tensor* bz = q::const_input(init, 5);
  if (bz && (bz->dtype != b.dtype || (bz->numel() != 1 && bz->numel() != N))) return nullptr;
  Q8OutSpec spec;
  spec.op = kOp;
  std::vector<int32_t> bias;
  const int bias_input = qgemm ? 6 : 8;
  if (kOp != Q8Op::qlinear && init.has_input(bias_input)) {
    if (!init.is_const(bias_input)) return nullptr;
    const Tensor& c = init.const_inputs[bias_input];
    if (c.dtype != DType::i32) return nullptr;
    const int64_t rows = c.rank() >= 2 ? shape_numel(Shape(c.shape.begin(), c.shape.end() - 1)) : 1;
    if (c.numel() == 1) bias.assign(static_cast<size_t>(N), c.ptr<int32_t>()[0]);
    else if (c.numel() == N && rows == 1) bias.assign(c.ptr<int32_t>(), c.ptr<int32_t>() + N);
    else return nullptr;  // a bias per row: the dense kernel
  }
  if (kOp == Q8Op::qlinear) {
    spec.name = "QLinearMatMul";
    spec.y_type = q::q8_dtype(init, 7, 7);
    if (spec.y_type == DType::undefined) spec.y_type = at == DType::undefined ? DType::u8 : at;
  } else if (kOp == Q8Op::sliver_qlinear) {
    spec.name = "sliver:QLinearMatMul";
    spec.y_type = sliver_output_type(init, 7);
    if (!q::is_q8(spec.y_type) || !read_clamp(init.attrs, spec.y_type, &spec.lo, &spec.hi))
      return nullptr;
  } else {
    spec.name = "QGemm";
    spec.alpha = static_cast<float>(init.attrs.get_float("alpha", 1.0));
  }
  const std::vector<int32_t> zp = q::zp_list(bz, "b_zero_point");
  if (mode == Mode::automatic &&
      nonzero_fraction_q8(b, zp, trans_b ? K : 1, N) > max_density(true, DensePath::gemm))
    return nullptr;
  const int64_t rows = static_rows(init);
  SparsePackOptions po;
  po.cols = std::max<int64_t>(rows, 0);
  const bool per_channel = zp.size() > 1;
  auto w = trans_b ? pack_sparse_q8(N, K, b.data, b.dtype, K, 1, zp.data(), per_channel, po)
                   : pack_sparse_q8(N, K, b.data, b.dtype, 1, N, zp.data(), per_channel, po);
  const std::vector<std::shared_ptr<SparseQ8Weights>> ws{w};
  const ExtentClasses sparse = sparse_extents(ws, DensePath::gemm);
  if (!worth_building(mode, sparse, rows)) return nullptr;
  return std::make_unique<SparseLinearQ8>(init, mode, run_time_extents(sparse, rows),
                                          cost_note(ws, rows, DensePath::gemm), spec,
                                          std::move(bias), std::move(w));
}

// ---- INT8 QLinearConv, sliver:QLinearConv (NCHW: weights on the left; NHWC: on the right) ----

// Below kNhwcMinK inputs per output (stems on 1-3 channels, 1x1 convs on 16-32) the sparse NHWC
// path's im2row and panel transposes cost more than its products save (0.65-0.8x at 90% zeros,
// zoo layers, 1 thread, Zen 3), so those layers stay dense in auto mode. The dense paths' speed
// is the cost model's (sparse_driver.cc: kDensePaths).
constexpr int64_t kNhwcMinK = 64;
// Image stems (a window over 1-4 channels) stay dense too whatever their K: ResNet-18's 7x7 stem
// (K = 147) at 90% zeros took 2.95-3.0 ms sparse vs 2.67-2.75 ms dense (1 thread, Zen 3): each
// pixel's 147 values go through im2row, the panel transpose and the int32 tile transpose for
// about 15 products per output channel.
constexpr int64_t kNhwcMinChannels = 5;

// The resolved window of geometry g over an input of H x W (H = 1 for 1-D convs).
Window2 q8_window(const q::ConvGeometry& g, int64_t H, int64_t W) {
  Window2 w;
  w.h = AxisGeom{1, 1, 1, 1, 1, 0, 0};
  if (g.spatial == 2) {
    w.h = AxisGeom{H, 0, g.kh, g.sh, g.dh, 0, 0};
    q::conv_dim(g.auto_pad, H, g.kh, g.sh, g.dh, g.pads[0], g.pads[2], &w.h.out, &w.h.pad_begin);
  }
  w.w = AxisGeom{W, 0, g.kw, g.sw, g.dw, 0, 0};
  q::conv_dim(g.auto_pad, W, g.kw, g.sw, g.dw, g.pads[g.spatial - 1], g.pads[2 * g.spatial - 1],
              &w.w.out, &w.w.pad_begin);
  return w;
}

class SparseConvQ8 final : public SparseBase {
 public:
  SparseConvQ8(const KernelInit& init, Mode mode, ExtentClasses sparse, CostNote note,
               q::ConvGeometry g,
               bool channels_last, bool nchw_input, Q8OutSpec spec, std::vector<int32_t> bias,
               std::vector<std::shared_ptr<SparseQ8Weights>> packed)
      : SparseBase(init, mode, sparse, note), g_(std::move(g)), nhwc_(channels_last),
        nchw_input_(nchw_input), spec_(spec), bias_(std::move(bias)), packed_(std::move(packed)) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    if (!q::is_q8(x.dtype)) fail("X must be uint8 or int8, got ", dtype_name(x.dtype));
    const int64_t cin = g_.cg * g_.group;
    const bool last = nhwc_ && !nchw_input_;  // channels are X's last axis
    if (x.rank() != g_.spatial + 2 || x.shape[last ? x.rank() - 1 : 1] != cin)
      fail("X ", shape_str(x.shape), " does not match ", cin, " input channels",
           nhwc_ ? (last ? " (channels last)" : " (channels last, nchw input)") : "");
    const int64_t H = g_.spatial == 2 ? x.shape[last ? 1 : 2] : 1;
    const int64_t W = x.shape[last ? x.rank() - 2 : x.rank() - 1];
    const Window2 win = q8_window(g_, H, W);
    const int64_t batch = x.shape[0];
    if (!use_sparse(nhwc_ ? batch * win.out_plane() : win.out_plane()))
      return run_dense(ctx, in, out);
    QGemmArgs a;
    std::vector<float> w_scale;
    const DType yt = fill_q8_output(spec_, in, x.dtype, g_.oc, &w_scale, &a);
    Shape ys = {batch};
    if (!nhwc_) ys.push_back(g_.oc);
    if (g_.spatial == 2) ys.push_back(win.h.out);
    ys.push_back(win.w.out);
    if (nhwc_) ys.push_back(g_.oc);
    out[0] = Tensor::empty(yt, ys);
    if (out[0].numel() == 0) return;
    a.a_type = x.dtype;
    a.bias = bias_.data();
    if (nhwc_) run_nhwc(win, x, a, out[0], ctx.pool);
    else run_nchw(win, x, a, out[0], ctx.pool);
  }

  std::string describe() const override {
    const bool pw = pointwise();
    return std::string("sparse ") + (nhwc_ ? "q8_spmm_right " : "q8_spmm_left ") + spec_.name +
           (nhwc_ ? (pw ? " nhwc_1x1 " : " nhwc_im2row ") : (pw ? " conv_1x1 " : " conv_im2col ")) +
           layout_str(packed_, true) + (nchw_input_ ? " nchw input" : "") +
           extent_note("pixels", true);
  }
  int64_t weight_bytes() const override { return total_bytes(packed_) + fallback_bytes(); }

 private:
  bool pointwise() const {
    return g_.kh == 1 && g_.kw == 1 && g_.sh == 1 && g_.sw == 1 &&
           std::all_of(g_.pads.begin(), g_.pads.end(), [](int64_t p) { return p == 0; }) &&
           (g_.auto_pad == "NOTSET" || g_.auto_pad == "VALID");
  }

  // Rows = output pixels of the whole batch, [rows, K] x W^T -> [rows, OC].
  void run_nhwc(const Window2& win, const Tensor& x, QGemmArgs a, Tensor& y,
                ThreadPool* pool) const {
    const SparseQ8Weights& w = *packed_[0];
    const int64_t K = w.in, rows = x.shape[0] * win.out_plane();
    const uint8_t* px = static_cast<const uint8_t*>(x.data);
    std::vector<uint8_t> nhwc;
    if (nchw_input_) {  // an NCHW input (the layout region's entry): channels last first
      const int64_t C = g_.cg, plane = win.in_plane();
      nhwc.resize(static_cast<size_t>(x.numel()));
      for (int64_t n = 0; n < x.shape[0]; ++n)
        q::transpose_block(px + n * C * plane, C, plane, plane, nhwc.data() + n * C * plane, C);
      px = nhwc.data();
    }
    uint8_t* py = static_cast<uint8_t*>(y.data);
    const size_t y_elem = dtype_size(y.dtype);
    a.ldc = g_.oc;
    if (pointwise()) {  // the image is A
      a.M = rows;
      a.a = px;
      a.lda = K;
      a.c = py;
      q8_spmm_right(a, w, pool);
      return;
    }
    const int64_t tile = std::min(rows, gather_block(K, rows));
    std::vector<uint8_t> buf(static_cast<size_t>(tile * K));
    const uint8_t pad = static_cast<uint8_t>(a.a_zero_point);
    for (int64_t r0 = 0; r0 < rows; r0 += tile) {
      const int64_t r1 = std::min(rows, r0 + tile);
      parallel_for(pool, r1 - r0, static_cast<double>(K), [&](int64_t b, int64_t e) {
        im2row_nhwc(win, g_.cg, px, pad, r0 + b, r0 + e, buf.data() + b * K);
      });
      a.M = r1 - r0;
      a.a = buf.data();
      a.lda = K;
      a.c = py + r0 * g_.oc * y_elem;
      q8_spmm_right(a, w, pool);
    }
  }

  // Per image and group: Y[ocg, pixels] = W_g[ocg, K] X_g[K, pixels].
  void run_nchw(const Window2& win, const Tensor& x, QGemmArgs a, Tensor& y,
                ThreadPool* pool) const {
    const int64_t ocg = g_.ocg(), K = g_.k(), ohw = win.out_plane(), cin = g_.cg * g_.group;
    const uint8_t* px = static_cast<const uint8_t*>(x.data);
    uint8_t* py = static_cast<uint8_t*>(y.data);
    const size_t y_elem = dtype_size(y.dtype);
    const bool direct = pointwise();
    const int64_t nb = gather_block(K, ohw);
    std::vector<uint8_t> col(direct ? 0 : static_cast<size_t>(K * nb));
    const uint8_t pad = static_cast<uint8_t>(a.a_zero_point);
    const int32_t* bias = a.bias;
    const float* scale = a.b_scale;
    for (int64_t n = 0; n < x.shape[0]; ++n) {
      for (int64_t gi = 0; gi < g_.group; ++gi) {
        const uint8_t* xg = px + (n * cin + gi * g_.cg) * win.in_plane();
        uint8_t* yg = py + (n * g_.oc + gi * ocg) * ohw * y_elem;
        QGemmArgs ag = a;
        ag.bias = bias + gi * ocg;
        ag.b_scale = scale + gi * ocg;
        ag.ldc = ohw;
        if (direct) {
          ag.M = ohw;
          ag.a = xg;
          ag.lda = win.in_plane();
          ag.c = yg;
          q8_spmm_left(ag, *packed_[gi], pool);
          continue;
        }
        for (int64_t p0 = 0; p0 < ohw; p0 += nb) {
          const int64_t p1 = std::min(ohw, p0 + nb);
          parallel_for(pool, K, static_cast<double>(p1 - p0), [&](int64_t r0, int64_t r1) {
            im2col(win, xg, pad, r0, r1, p0, p1, col.data(), p1 - p0);
          });
          ag.M = p1 - p0;
          ag.a = col.data();
          ag.lda = p1 - p0;
          ag.c = yg + p0 * y_elem;
          q8_spmm_left(ag, *packed_[gi], pool);
        }
      }
    }
  }

  q::ConvGeometry g_;
  bool nhwc_, nchw_input_;
  Q8OutSpec spec_;
  std::vector<int32_t> bias_;  // [oc], zeros when the node has none
  std::vector<std::shared_ptr<SparseQ8Weights>> packed_;
};

template <bool kSliver>
std::unique_ptr<Kernel> make_sparse_conv_q8(const KernelInit& init) {
  const Mode mode = read_mode(init);
  if (mode == Mode::dense) return nullptr;
  if (init.num_inputs() < 8 || init.num_outputs() != 1) return nullptr;
  if (!init.is_const(3) || !q::const_or_missing(init, 5)) return nullptr;
  if (init.has_input(8) && !init.is_const(8)) return nullptr;
  if (kSliver ? !only_attrs(init.attrs, {SLIVER_CONV_ATTRS, "activation_min", "activation_max",
                                         "channels_last", "nchw_input"})
              : !only_attrs(init.attrs, {SLIVER_CONV_ATTRS}))
    return nullptr;
  const Tensor& w = init.const_inputs[3];
  if (!q::is_q8(w.dtype) || w.numel() == 0) return nullptr;
  q::ConvGeometry g;
  if (!q::parse_conv(init.attrs, w.shape, &g)) return nullptr;
  if (g.cg == 1 && g.oc == g.group && g.group > 1) return nullptr;  // depthwise: a stencil
  const bool nhwc = kSliver && init.attrs.get_int("channels_last", 0) != 0;
  const bool nchw_input = nhwc && init.attrs.get_int("nchw_input", 0) != 0;
  if (nhwc && (g.spatial != 2 || g.group != 1)) return nullptr;  // what the dense NHWC conv takes
  for (int i : {1, 2, 6, 7})
    if (init.is_const(i) && init.const_inputs[i].numel() != 1) return nullptr;
  if (init.is_const(4) && init.const_inputs[4].numel() != 1 &&
      init.const_inputs[4].numel() != g.oc)
    return nullptr;
  const Tensor* wz = q::const_input(init, 5);
  if (wz && (wz->dtype != w.dtype || (wz->numel() != 1 && wz->numel() != g.oc))) return nullptr;
  Q8OutSpec spec;
  if (kSliver) {
    spec.op = Q8Op::sliver_qlinear;
    spec.name = "sliver:QLinearConv";
    spec.y_type = sliver_output_type(init, 7);
    if (!q::is_q8(spec.y_type) || !read_clamp(init.attrs, spec.y_type, &spec.lo, &spec.hi))
      return nullptr;
  } else {
    spec.name = "QLinearConv";
    spec.y_type = q::q8_dtype(init, 7, 7);
    if (spec.y_type == DType::undefined) spec.y_type = q::q8_dtype(init, 0, 2);
  }
  std::vector<int32_t> bias(static_cast<size_t>(g.oc), 0);
  if (init.has_input(8)) {
    const Tensor& b = init.const_inputs[8];
    if (b.dtype != DType::i32 || b.numel() != g.oc) return nullptr;
    bias.assign(b.ptr<int32_t>(), b.ptr<int32_t>() + g.oc);
  }
  const std::vector<int32_t> zp = q::zp_list(wz, "w_zero_point");
  const int64_t K = g.k(), ocg = g.ocg(), taps = g.kh * g.kw;
  // auto mode never takes these
  const bool too_short = nhwc && (K < kNhwcMinK || g.cg < kNhwcMinChannels);
  if (mode == Mode::automatic && too_short) return nullptr;
  const bool pointwise = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 &&
                         std::all_of(g.pads.begin(), g.pads.end(), [](int64_t p) { return !p; });
  const DensePath dense = !nhwc ? DensePath::q8_nchw
                          : pointwise ? DensePath::q8_nhwc_1x1 : DensePath::q8_nhwc;
  if (mode == Mode::automatic && nonzero_fraction_q8(w, zp, K, g.oc) > max_density(true, dense))
    return nullptr;
  // Static extent: pixels of the batch (NHWC, one product) or of one image (NCHW).
  int64_t extent = -1;
  if (static_extent(init, 0, 0, -1) > 0 &&
      init.input_shapes[0].dims.size() == static_cast<size_t>(g.spatial) + 2) {
    const Shape& xd = init.input_shapes[0].dims;
    const bool last = nhwc && !nchw_input;  // channels are X's last axis
    const int64_t H = g.spatial == 2 ? xd[last ? 1 : 2] : 1;
    const int64_t W = xd[last ? xd.size() - 2 : xd.size() - 1];
    extent = q8_window(g, H, W).out_plane() * (nhwc ? xd[0] : 1);
  }
  SparsePackOptions po;
  po.cols = std::max<int64_t>(extent, 0);
  const bool per_channel = zp.size() > 1;
  std::vector<std::shared_ptr<SparseQ8Weights>> packed;
  const uint8_t* pw = static_cast<const uint8_t*>(w.data);
  if (nhwc) {
    std::vector<uint8_t> perm(static_cast<size_t>(g.oc * K));  // [oc][tap][c], im2row's order
    for (int64_t o = 0; o < g.oc; ++o)
      for (int64_t c = 0; c < g.cg; ++c)
        for (int64_t t = 0; t < taps; ++t) perm[o * K + t * g.cg + c] = pw[o * K + c * taps + t];
    packed.push_back(
        pack_sparse_q8(g.oc, K, perm.data(), w.dtype, K, 1, zp.data(), per_channel, po));
  } else {
    for (int64_t gi = 0; gi < g.group; ++gi)
      packed.push_back(pack_sparse_q8(ocg, K, pw + gi * ocg * K, w.dtype, K, 1,
                                      zp.data() + (per_channel ? gi * ocg : 0), per_channel, po));
  }
  const ExtentClasses sparse = sparse_extents(packed, dense);
  if (!worth_building(mode, sparse, extent)) return nullptr;
  CostNote note = cost_note(packed, extent, dense);
  if (too_short) note.cost = kNeverCost;
  return std::make_unique<SparseConvQ8>(init, mode, run_time_extents(sparse, extent), note,
                                        std::move(g), nhwc, nchw_input, spec, std::move(bias),
                                        std::move(packed));
}

}  // namespace

SLIVER_REGISTER_KERNEL_PRIORITY("QLinearMatMul", make_sparse_linear_q8<Q8Op::qlinear>,
                                kSparsePriority);
SLIVER_REGISTER_KERNEL_PRIORITY("sliver:QLinearMatMul",
                                make_sparse_linear_q8<Q8Op::sliver_qlinear>, kSparsePriority);
SLIVER_REGISTER_KERNEL_PRIORITY("com.microsoft:QGemm", make_sparse_linear_q8<Q8Op::qgemm>,
                                kSparsePriority);
SLIVER_REGISTER_KERNEL_PRIORITY("QLinearConv", make_sparse_conv_q8<false>, kSparsePriority);
SLIVER_REGISTER_KERNEL_PRIORITY("sliver:QLinearConv", make_sparse_conv_q8<true>,
                                kSparsePriority);

}  // namespace sliver::ops
