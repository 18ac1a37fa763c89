// Resize, modes "nearest" and "linear", float32, any rank (declines cubic, tf_crop_and_resize,
// antialias, axes and keep_aspect_ratio_policy).
//
// Both modes are separable: N-linear interpolation is a 1-D linear interpolation along each
// axis in turn, and nearest is the same with weight 0. So each axis whose map is not the identity
// gets one pass over a [outer, in, inner] view, writing [outer, out, inner]:
//   y[o][x][i] = (1 - w[x]) * src[o][x0[x]][i] + w[x] * src[o][x1[x]][i]
// with contiguous inner loops; when only the last two axes change (the usual image resize) the
// two passes run fused, row by row. Coordinates follow coordinate_transformation_mode, nearest
// rounding nearest_mode, and linear clamps the source coordinate to [0, in - 1] like onnxruntime.
#include <cmath>
#include <vector>

#include "ops/common.h"

namespace sliver::ops {
namespace {

struct AxisMap {
  std::vector<int64_t> i0, i1;
  std::vector<float> w;
  bool identity = true;
};

class ResizeKernel final : public Kernel {
 public:
  ResizeKernel(bool linear, std::string coord, std::string nearest, int scales_input, int sizes_input)
      : linear_(linear), coord_(std::move(coord)), nearest_(std::move(nearest)),
        scales_input_(scales_input), sizes_input_(sizes_input) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    if (x.dtype != DType::f32) fail("expected float input");
    const int64_t r = x.rank();
    const Tensor* sizes_t = sizes_input_ >= 0 ? opt(in, sizes_input_) : nullptr;
    const Tensor* scales_t = scales_input_ >= 0 ? opt(in, scales_input_) : nullptr;
    Shape ys(r);
    std::vector<double> scale(r);
    if (sizes_t && sizes_t->numel() > 0) {
      const std::vector<int64_t> s = read_ints(*sizes_t, "sizes");
      if (static_cast<int64_t>(s.size()) != r) fail("sizes has ", s.size(), " entries for rank ", r);
      for (int64_t a = 0; a < r; ++a) {
        ys[a] = s[a];
        scale[a] = x.shape[a] ? static_cast<double>(s[a]) / x.shape[a] : 1.0;
      }
    } else if (scales_t && scales_t->numel() > 0) {
      if (scales_t->dtype != DType::f32 || scales_t->numel() != r) fail("scales must be float[", r, "]");
      for (int64_t a = 0; a < r; ++a) {
        scale[a] = scales_t->ptr<float>()[a];
        if (scale[a] <= 0) fail("scales must be positive");
        ys[a] = static_cast<int64_t>(std::floor(x.shape[a] * static_cast<double>(scales_t->ptr<float>()[a])));
      }
    } else {
      fail("neither scales nor sizes given");
    }
    // Only the last two axes change (an image's H and W, or a sequence's length): one pass.
    bool outer_identity = r >= 2;
    for (int64_t a = 0; a + 2 < r && outer_identity; ++a)
      outer_identity = ys[a] == x.shape[a] && axis_map(x.shape[a], ys[a], scale[a]).identity;
    if (outer_identity) {
      Tensor y = Tensor::empty(DType::f32, ys);
      if (y.numel() > 0)
        resize_2d(x, y, axis_map(x.shape[r - 2], ys[r - 2], scale[r - 2]),
                  axis_map(x.shape[r - 1], ys[r - 1], scale[r - 1]), ctx.pool);
      out[0] = std::move(y);
      return;
    }
    // Interpolate axis by axis (innermost first) through a temporary.
    Tensor cur = x;
    for (int64_t a = r - 1; a >= 0; --a) {
      const AxisMap m = axis_map(x.shape[a], ys[a], scale[a]);
      if (m.identity && ys[a] == cur.shape[a]) continue;
      Shape ns = cur.shape;
      ns[a] = ys[a];
      Tensor next = Tensor::empty(DType::f32, ns);
      pass(cur, next, a, m, ctx.pool);
      cur = std::move(next);
    }
    out[0] = cur;
  }

 private:
  // Source coordinate of output index o on an axis of in -> out with scale s.
  double source_coord(int64_t o, int64_t in, int64_t out, double s) const {
    const double xo = static_cast<double>(o);
    if (coord_ == "asymmetric") return xo / s;
    // The resized length is in * s before flooring (onnxruntime and onnx's reference agree).
    if (coord_ == "align_corners") {
      const double len = in * s;
      return len == 1.0 || out == 1 ? 0.0 : xo * (in - 1) / (len - 1);
    }
    if (coord_ == "pytorch_half_pixel") return out > 1 ? (xo + 0.5) / s - 0.5 : 0.0;
    if (coord_ == "half_pixel_symmetric") {
      const double adj = out / (in * s), center = in / 2.0;
      return center * (1 - adj) + (xo + 0.5) / s - 0.5;
    }
    return (xo + 0.5) / s - 0.5;  // half_pixel
  }

  int64_t round_nearest(double v) const {
    if (nearest_ == "floor") return static_cast<int64_t>(std::floor(v));
    if (nearest_ == "ceil") return static_cast<int64_t>(std::ceil(v));
    if (nearest_ == "round_prefer_ceil") return static_cast<int64_t>(std::floor(v + 0.5));
    // round_prefer_floor: halves go down
    return v == std::floor(v) + 0.5 ? static_cast<int64_t>(std::floor(v)) : static_cast<int64_t>(std::round(v));
  }

  AxisMap axis_map(int64_t in, int64_t out, double s) const {
    AxisMap m;
    m.i0.resize(out);
    m.i1.resize(out);
    m.w.assign(out, 0.f);
    m.identity = in == out;
    for (int64_t o = 0; o < out; ++o) {
      const double c = source_coord(o, in, out, s);
      if (linear_) {
        const double cc = std::clamp(c, 0.0, static_cast<double>(std::max<int64_t>(in - 1, 0)));
        const int64_t lo = static_cast<int64_t>(std::floor(cc));
        m.i0[o] = lo;
        m.i1[o] = std::min(lo + 1, in - 1);
        m.w[o] = static_cast<float>(cc - lo);
      } else {
        m.i0[o] = m.i1[o] = std::clamp<int64_t>(round_nearest(c), 0, in - 1);
      }
      if (m.i0[o] != o || m.w[o] != 0.f) m.identity = false;
    }
    return m;
  }

  // The separable passes of the last two axes fused: each output row interpolates its one or
  // two source rows along W, then blends them (the same operations, in the same order, as the
  // W pass followed by the H pass).
  void resize_2d(const Tensor& src, Tensor& dst, const AxisMap& my, const AxisMap& mx,
                 ThreadPool* pool) const {
    const int64_t r = src.rank();
    const int64_t ih = src.shape[r - 2], iw = src.shape[r - 1];
    const int64_t oh = dst.shape[r - 2], ow = dst.shape[r - 1];
    const int64_t rows = dst.numel() / ow;
    const float* ps = src.ptr<float>();
    float* pd = dst.ptr<float>();
    const int64_t* x0 = mx.i0.data();
    const int64_t* x1 = mx.i1.data();
    const float* wx = mx.w.data();
    const bool lin = linear_;
    auto along_w = [&](const float* s, float* d) {
      if (!lin) {
        for (int64_t x = 0; x < ow; ++x) d[x] = s[x0[x]];
        return;
      }
      for (int64_t x = 0; x < ow; ++x) {
        const float a = s[x0[x]], b = s[x1[x]];
        d[x] = wx[x] == 0.f ? a : a + wx[x] * (b - a);
      }
    };
    parallel_for(pool, rows, static_cast<double>(ow * 4), [&](int64_t b, int64_t e) {
      float* lower = lin ? thread_scratch(0, static_cast<size_t>(ow)) : nullptr;
      for (int64_t q = b; q < e; ++q) {
        const int64_t plane = q / oh, yo = q - plane * oh;
        const float* s0 = ps + (plane * ih + my.i0[yo]) * iw;
        float* d = pd + q * ow;
        along_w(s0, d);
        const float wy = my.w[yo];
        if (wy == 0.f) continue;
        along_w(ps + (plane * ih + my.i1[yo]) * iw, lower);
        for (int64_t x = 0; x < ow; ++x) d[x] = d[x] + wy * (lower[x] - d[x]);
      }
    });
  }

  static void pass(const Tensor& src, Tensor& dst, int64_t axis, const AxisMap& m, ThreadPool* pool) {
    int64_t outer = 1, inner = 1;
    for (int64_t a = 0; a < axis; ++a) outer *= src.shape[a];
    for (int64_t a = axis + 1; a < src.rank(); ++a) inner *= src.shape[a];
    const int64_t nin = src.shape[axis], nout = dst.shape[axis];
    const float* ps = src.ptr<float>();
    float* pd = dst.ptr<float>();
    parallel_for(pool, outer * nout, static_cast<double>(inner * 2), [&](int64_t b, int64_t e) {
      for (int64_t q = b; q < e; ++q) {
        const int64_t o = q / nout, xo = q % nout;
        const float* s0 = ps + (o * nin + m.i0[xo]) * inner;
        const float* s1 = ps + (o * nin + m.i1[xo]) * inner;
        float* d = pd + q * inner;
        const float w = m.w[xo];
        if (w == 0.f) {
          std::copy(s0, s0 + inner, d);
        } else {
          for (int64_t i = 0; i < inner; ++i) d[i] = s0[i] + w * (s1[i] - s0[i]);
        }
      }
    });
  }

  bool linear_;
  std::string coord_, nearest_;
  int scales_input_, sizes_input_;
};

std::unique_ptr<Kernel> make_resize(const KernelInit& init) {
  if (init.num_inputs() < 1 || init.input_dtypes[0] != DType::f32) return nullptr;
  const Attrs& a = init.attrs;
  const std::string mode = a.get_string("mode", "nearest");
  if (mode != "nearest" && mode != "linear") return nullptr;
  if (a.get_int("antialias", 0) != 0 || a.has("axes") || a.get_int("exclude_outside", 0) != 0)
    return nullptr;
  if (a.get_string("keep_aspect_ratio_policy", "stretch") != "stretch") return nullptr;
  std::string coord = a.get_string("coordinate_transformation_mode", "half_pixel");
  const std::string nearest = a.get_string("nearest_mode", "round_prefer_floor");
  if (init.opset < 11) coord = "asymmetric";  // Resize-10 has no such attribute
  // Resize-10 nearest floors when enlarging and ceils when shrinking (onnxruntime's rule),
  // which no nearest_mode expresses: ops/compat.py runs it.
  if (init.opset < 11 && mode == "nearest") return nullptr;
  // tf_half_pixel_for_nearest (Resize-11 only) and tf_crop_and_resize fall back.
  static const char* kCoords[] = {"half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel",
                                  "half_pixel_symmetric"};
  if (std::find(std::begin(kCoords), std::end(kCoords), coord) == std::end(kCoords)) return nullptr;
  if (nearest != "round_prefer_floor" && nearest != "round_prefer_ceil" && nearest != "floor" &&
      nearest != "ceil")
    return nullptr;
  if (init.opset < 11) return std::make_unique<ResizeKernel>(mode == "linear", coord, nearest, 1, -1);
  return std::make_unique<ResizeKernel>(mode == "linear", coord, nearest, 2, 3);
}
SLIVER_REGISTER_KERNEL("Resize", make_resize);

}  // namespace
}  // namespace sliver::ops
