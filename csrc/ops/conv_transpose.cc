// ConvTranspose (1-D and 2-D, groups, pads/strides/dilations/output_padding/output_shape/auto_pad).
//
// A transposed convolution scatters every input pixel, weighted by the window, into the output.
// Per image and group that is one GEMM, cols (M_g*kh*kw x H*W) = W_g^T (packed once) * X_g, then
// col2im adds each column row into the output plane at its strided, dilated offset (the adjoint
// of Conv's im2col). Output planes are independent, so col2im runs in parallel over channels.
#include "ops/common.h"
#include "ops/conv_geometry.h"

namespace sliver::ops {
namespace {

struct TAxis {
  int64_t in, out, k, s, d, pad_begin;
};

class ConvTransposeKernel final : public Kernel {
 public:
  ConvTransposeKernel(const KernelInit& init, const Shape& wshape, int64_t group)
      : wshape_(wshape), group_(group) {
    const size_t nsp = wshape.size() - 2;
    const Attrs& a = init.attrs;
    strides_ = a.get_ints("strides", std::vector<int64_t>(nsp, 1));
    dilations_ = a.get_ints("dilations", std::vector<int64_t>(nsp, 1));
    out_pad_ = a.get_ints("output_padding", std::vector<int64_t>(nsp, 0));
    pads_ = a.get_ints("pads", {});
    output_shape_ = a.get_ints("output_shape", {});
    auto_pad_ = a.get_string("auto_pad", "NOTSET");
    cg_ = wshape[0] / group;
    mg_ = wshape[1];
    kk_ = 1;
    for (size_t i = 2; i < wshape.size(); ++i) kk_ *= wshape[i];
    if (init.is_const(1)) {
      weights_ = init.const_inputs[1];
      const int64_t mk = mg_ * kk_;
      for (int64_t g = 0; g < group_; ++g)
        packed_.push_back(pack_a(mk, cg_, weights_.ptr<float>() + g * cg_ * mk, mk, true));
    }
    if (init.has_input(2) && init.is_const(2)) bias_ = init.const_inputs[2];
  }

  bool valid() const {
    const size_t nsp = wshape_.size() - 2;
    if (strides_.size() != nsp || dilations_.size() != nsp || out_pad_.size() != nsp) return false;
    if (!pads_.empty() && pads_.size() != 2 * nsp) return false;
    if (!output_shape_.empty() && output_shape_.size() != nsp) return false;
    for (size_t i = 0; i < nsp; ++i)
      if (strides_[i] < 1 || dilations_[i] < 1) return false;
    return auto_pad_ == "NOTSET" || auto_pad_ == "VALID" || auto_pad_ == "SAME_UPPER" ||
           auto_pad_ == "SAME_LOWER";
  }

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    const Tensor& wt = weights_.defined() ? weights_ : need(in, 1);
    const Tensor* bias = bias_.defined() ? &bias_ : opt(in, 2);
    const size_t nsp = wshape_.size() - 2;
    if (x.dtype != DType::f32 || x.rank() != static_cast<int64_t>(nsp) + 2)
      fail("expected a float input of rank ", nsp + 2);
    if (wt.shape != wshape_) fail("weights of shape ", shape_str(wt.shape), ", expected ", shape_str(wshape_));
    const int64_t n = x.shape[0], c = x.shape[1], m = mg_ * group_;
    if (c != cg_ * group_) fail("input has ", c, " channels, weights expect ", cg_ * group_);
    if (bias && bias->numel() != m) fail("bias must have ", m, " elements");
    TAxis ax[2] = {{1, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 1, 0}};
    Shape yshape = {n, m};
    for (size_t i = 0; i < nsp; ++i) {
      TAxis& t = ax[2 - nsp + i];
      t = axis(i, x.shape[2 + i]);
      yshape.push_back(t.out);
    }
    const TAxis &H = ax[0], &W = ax[1];
    Tensor y = Tensor::empty(DType::f32, yshape);
    const int64_t in_plane = H.in * W.in, out_plane = H.out * W.out, mk = mg_ * kk_;
    float* py = y.ptr<float>();
    float* cols = thread_scratch(0, static_cast<size_t>(std::max<int64_t>(mk * in_plane, 1)));
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t g = 0; g < group_; ++g) {
        GemmOperandA a;
        if (!packed_.empty()) {
          a.packed = packed_[g].get();
        } else {
          a.data = wt.ptr<float>() + g * cg_ * mk;
          a.ld = mk;
          a.trans = true;
        }
        GemmOperandB bm;
        bm.data = x.ptr<float>() + (b * c + g * cg_) * in_plane;
        bm.ld = in_plane;
        f32_gemm(mk, in_plane, cg_, a, bm, cols, in_plane, Epilogue{}, ctx.pool);
        parallel_for(ctx.pool, mg_, static_cast<double>(kk_ * in_plane), [&](int64_t m0, int64_t m1) {
          for (int64_t mo = m0; mo < m1; ++mo) {
            const int64_t oc = g * mg_ + mo;
            float* yp = py + (b * m + oc) * out_plane;
            std::fill(yp, yp + out_plane, bias ? bias->ptr<float>()[oc] : 0.f);
            col2im(H, W, cols + mo * kk_ * in_plane, yp);
          }
        });
      }
    }
    out[0] = std::move(y);
  }

  std::string describe() const override {
    return std::string("convtranspose_col2im ") + f32_gemm_kernel().name;
  }

 private:
  // Output size and leading padding of spatial axis i, following the spec (and onnx's reference
  // where the spec is silent: an explicit output_shape without auto_pad keeps the given pads).
  TAxis axis(size_t i, int64_t in) const {
    const size_t nsp = wshape_.size() - 2;
    TAxis t{in, 0, wshape_[2 + i], strides_[i], dilations_[i], 0};
    const int64_t full = t.s * (in - 1) + out_pad_[i] + (t.k - 1) * t.d + 1;
    const bool same = auto_pad_ == "SAME_UPPER" || auto_pad_ == "SAME_LOWER";
    if (same && pads_.empty()) {
      t.out = output_shape_.empty() ? in * t.s : output_shape_[i];
      t.pad_begin = floor_div2(full - t.out, auto_pad_ == "SAME_UPPER");
    } else {
      const int64_t pb = pads_.empty() ? 0 : pads_[i], pe = pads_.empty() ? 0 : pads_[nsp + i];
      t.pad_begin = pb;
      t.out = output_shape_.empty() ? full - pb - pe : output_shape_[i];
    }
    if (t.out < 0) fail("negative output size on spatial axis ", i);
    return t;
  }

  // total // 2 (SAME_UPPER) or total - total // 2 with Python's floor division.
  static int64_t floor_div2(int64_t total, bool upper) {
    const int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);
    return upper ? half : total - half;
  }

  // yp[oh][ow] += cols[(i*kw + j)][h*W + w] with oh = h*s - pad + i*d (and the same for w).
  static void col2im(const TAxis& H, const TAxis& W, const float* cols, float* yp) {
    const int64_t in_plane = H.in * W.in;
    for (int64_t i = 0; i < H.k; ++i) {
      for (int64_t j = 0; j < W.k; ++j) {
        const float* src = cols + (i * W.k + j) * in_plane;
        for (int64_t h = 0; h < H.in; ++h) {
          const int64_t oh = h * H.s - H.pad_begin + i * H.d;
          if (oh < 0 || oh >= H.out) continue;
          float* dst = yp + oh * W.out;
          const float* s = src + h * W.in;
          const int64_t off = j * W.d - W.pad_begin;  // ow = w * s + off
          for (int64_t w = 0; w < W.in; ++w) {
            const int64_t ow = w * W.s + off;
            if (ow >= 0 && ow < W.out) dst[ow] += s[w];
          }
        }
      }
    }
  }

  Shape wshape_;
  int64_t group_, cg_ = 0, mg_ = 0, kk_ = 1;
  std::vector<int64_t> strides_, dilations_, out_pad_, pads_, output_shape_;
  std::string auto_pad_;
  Tensor weights_, bias_;
  std::vector<std::shared_ptr<PackedA>> packed_;
};

std::unique_ptr<Kernel> make_conv_transpose(const KernelInit& init) {
  if (init.num_inputs() < 2 || init.num_inputs() > 3 || init.num_outputs() != 1) return nullptr;
  for (int i = 0; i < init.num_inputs(); ++i)
    if (init.has_input(i) && init.input_dtypes[i] != DType::f32) return nullptr;
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
  if (wshape.size() != 3 && wshape.size() != 4) return nullptr;
  const int64_t group = init.attrs.get_int("group", 1);
  if (group < 1 || wshape[0] % group != 0) return nullptr;
  const std::vector<int64_t> ks = init.attrs.get_ints("kernel_shape", Shape(wshape.begin() + 2, wshape.end()));
  if (ks != Shape(wshape.begin() + 2, wshape.end())) return nullptr;
  auto k = std::make_unique<ConvTransposeKernel>(init, wshape, group);
  if (!k->valid()) return nullptr;
  return k;
}
SLIVER_REGISTER_KERNEL("ConvTranspose", make_conv_transpose);

}  // namespace
}  // namespace sliver::ops
