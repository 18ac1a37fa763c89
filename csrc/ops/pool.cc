// MaxPool, AveragePool (1-3 spatial axes), GlobalAveragePool, GlobalMaxPool; float32, NC... layout.
//
// Windows are clipped to the input analytically (first and last valid tap per axis), so the loops
// carry no bounds checks. AveragePool divides by the taps inside the input, or with
// count_include_pad by the taps inside the padded extent [-pad_begin, in + pad_end) (taps that
// ceil_mode adds past the end padding are never counted).
#include <cmath>
#include <limits>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <vector>

#include "ops/common.h"
#include "ops/conv_geometry.h"
#include "ukernels/f32_pool/f32_pool.h"
#include "ukernels/f32_vbinary/f32_vbinary.h"

namespace sliver::ops {
namespace {

// max(a, b) that propagates a NaN from either side, without a branch: pooled values compare at
// random and would mispredict one per tap (GCC compiles the plain ?: form below to a compare
// and a jump). maxss keeps a's NaN; b's is selected by a mask.
inline float nan_max(float a, float b) {
#if defined(__SSE2__)
  const __m128 va = _mm_set_ss(a), vb = _mm_set_ss(b);
  const __m128 m = _mm_max_ss(vb, va);  // b > a ? b : a, so a's NaN survives
  const __m128 b_nan = _mm_cmpunord_ss(vb, vb);
  return _mm_cvtss_f32(_mm_or_ps(_mm_and_ps(b_nan, vb), _mm_andnot_ps(b_nan, m)));
#else
  const bool keep = (a > b) | (a != a);
  return keep ? a : b;
#endif
}

// Taps [lo, hi) of a window starting at `start` that fall inside [0, extent).
inline void clip_taps(int64_t start, int64_t k, int64_t d, int64_t extent, int64_t* lo, int64_t* hi) {
  *lo = start >= 0 ? 0 : (-start + d - 1) / d;
  *hi = start >= extent ? 0 : std::min<int64_t>(k, (extent - start + d - 1) / d);
  if (*hi < *lo) *hi = *lo;
}

class PoolKernel final : public Kernel {
 public:
  PoolKernel(bool max, WindowAttrs w, bool count_include_pad)
      : max_(max), w_(std::move(w)), count_include_pad_(count_include_pad) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    const size_t nsp = w_.kernel.size();
    if (x.dtype != DType::f32 || x.rank() != static_cast<int64_t>(nsp) + 2)
      fail("expected a float input of rank ", nsp + 2);
    // Pad to three spatial axes with trivial leading ones.
    AxisGeom g[3];
    for (size_t i = 0; i < 3 - nsp; ++i) g[i] = AxisGeom{1, 1, 1, 1, 1, 0, 0};
    Shape yshape = {x.shape[0], x.shape[1]};
    for (size_t i = 0; i < nsp; ++i) {
      g[3 - nsp + i] = resolve_axis(w_, i, x.shape[2 + i]);
      yshape.push_back(g[3 - nsp + i].out);
    }
    Tensor y = Tensor::empty(DType::f32, yshape);
    const int64_t planes = x.shape[0] * x.shape[1];
    const int64_t in_plane = g[0].in * g[1].in * g[2].in, out_plane = g[0].out * g[1].out * g[2].out;
    const int64_t taps = g[0].k * g[1].k * g[2].k;
    const float* px = x.ptr<float>();
    float* py = y.ptr<float>();
    const bool flat = g[0].out == 1 && g[0].k == 1 && g[0].in == 1;  // 1-D or 2-D
    // An average over the whole plane (the 7x7 head pool of CNNs written as AveragePool): one
    // vectorised sum per plane instead of a row pass and a column pass of one output each.
    auto whole = [](const AxisGeom& a) {
      return a.out == 1 && a.k == a.in && a.d == 1 && a.pad_begin == 0 && a.pad_end == 0;
    };
    const bool whole_plane = flat && !max_ && whole(g[1]) && whole(g[2]);
    const Windows2d win = flat && !whole_plane ? windows2d(g[1], g[2]) : Windows2d{};
    parallel_for(ctx.pool, planes, static_cast<double>(out_plane * taps), [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        if (whole_plane)
          py[p] = row_sum(px + p * in_plane, in_plane) / static_cast<float>(in_plane);
        else if (flat) plane2d(g[1], g[2], win, px + p * in_plane, py + p * out_plane);
        else plane(g, px + p * in_plane, py + p * out_plane);
      }
    });
    out[0] = std::move(y);
  }

 private:
  void plane(const AxisGeom* g, const float* x, float* y) const {
    int64_t lo[3], hi[3], start[3];
    for (int64_t od = 0; od < g[0].out; ++od) {
      start[0] = od * g[0].s - g[0].pad_begin;
      clip_taps(start[0], g[0].k, g[0].d, g[0].in, &lo[0], &hi[0]);
      for (int64_t oh = 0; oh < g[1].out; ++oh) {
        start[1] = oh * g[1].s - g[1].pad_begin;
        clip_taps(start[1], g[1].k, g[1].d, g[1].in, &lo[1], &hi[1]);
        for (int64_t ow = 0; ow < g[2].out; ++ow) {
          start[2] = ow * g[2].s - g[2].pad_begin;
          clip_taps(start[2], g[2].k, g[2].d, g[2].in, &lo[2], &hi[2]);
          *y++ = window(g, x, start, lo, hi);
        }
      }
    }
  }

  // Window clipping of a 2-D plane, the same for every plane of a run (integer divisions).
  struct Windows2d {
    int64_t col_lo = 0, col_hi = 0;       // output columns whose window lies inside the row
    std::vector<int64_t> row_lo, row_hi;  // valid input-row taps per output row
    std::vector<float> divisor;           // [oh * W.out + ow]: taps the average divides by
    // Max over non-overlapping windows (kw = sw <= 2) that all lie inside the plane: each output
    // row straight from its kh input rows (f32_pool rows_max), no intermediate buffer.
    bool direct = false;
  };
  static constexpr int64_t kMaxDirectRows = 16;
  Windows2d windows2d(const AxisGeom& H, const AxisGeom& W) const {
    Windows2d w;
    w.row_lo.resize(H.out);
    w.row_hi.resize(H.out);
    std::vector<float> hcount(W.out);
    for (int64_t ow = 0; ow < W.out; ++ow) {
      int64_t lo, hi;
      if (count_include_pad_) clip_taps(ow * W.s, W.k, W.d, W.pad_begin + W.in + W.pad_end, &lo, &hi);
      else clip_taps(ow * W.s - W.pad_begin, W.k, W.d, W.in, &lo, &hi);
      hcount[ow] = static_cast<float>(hi - lo);
    }
    // Interior: ow * s - pad >= 0 and ow * s - pad + (k - 1) * d < in.
    w.col_lo = std::min(W.out, (W.pad_begin + W.s - 1) / W.s);
    const int64_t last = W.in - 1 - (W.k - 1) * W.d + W.pad_begin;  // largest ow * s allowed
    w.col_hi = last < 0 ? w.col_lo : std::max(w.col_lo, std::min(W.out, last / W.s + 1));
    if (!max_) w.divisor.resize(H.out * W.out);
    for (int64_t oh = 0; oh < H.out; ++oh) {
      clip_taps(oh * H.s - H.pad_begin, H.k, H.d, H.in, &w.row_lo[oh], &w.row_hi[oh]);
      if (max_) continue;
      int64_t vl = w.row_lo[oh], vh = w.row_hi[oh];
      if (count_include_pad_) clip_taps(oh * H.s, H.k, H.d, H.pad_begin + H.in + H.pad_end, &vl, &vh);
      // Counts are small integers (exact in float); an empty window has sum 0 and yields 0.
      for (int64_t ow = 0; ow < W.out; ++ow)
        w.divisor[oh * W.out + ow] = std::max(static_cast<float>(vh - vl) * hcount[ow], 1.f);
    }
    w.direct = max_ && H.d == 1 && W.d == 1 && W.s == W.k && W.k <= 2 && W.pad_begin == 0 &&
               w.col_lo == 0 && w.col_hi == W.out && H.k <= kMaxDirectRows;
    for (int64_t oh = 0; oh < H.out && w.direct; ++oh)
      w.direct = w.row_lo[oh] == 0 && w.row_hi[oh] == H.k;
    return w;
  }

  // 2-D planes, separably (max and sum both are): every input row is first reduced along W into
  // row `ih` of a buffer (W.out values, f32_pool row kernels), then each output row combines its
  // window's buffer rows elementwise (f32_vbinary). kh + kw operations per output instead of
  // kh * kw, all vectorised; each pass reads what the previous one stored at the same addresses,
  // so no load waits on a half-forwarded store.
  void plane2d(const AxisGeom& H, const AxisGeom& W, const Windows2d& win, const float* x,
               float* y) const {
    const int64_t n = W.out;
    if (win.direct) {
      const float* rows[kMaxDirectRows];
      const F32PoolRowsMaxFn rows_max = f32_pool_row().rows_max;
      for (int64_t oh = 0; oh < H.out; ++oh, y += n) {
        const float* first = x + (oh * H.s - H.pad_begin) * W.in;
        for (int64_t r = 0; r < H.k; ++r) rows[r] = first + r * W.in;
        rows_max(n, W.k, rows, H.k, y);
      }
      return;
    }
    if (max_ && H.s > 1 && H.k <= kMaxDirectRows) {
      // Strided rows: each output row takes the max of its window's input rows first (one
      // contiguous pass), then one pass along W, so the strided W reduction runs once per output
      // row instead of once per input row, with half the calls. (Max only: it is exact in any
      // order, so the result is the same.)
      const float* rows[kMaxDirectRows];
      const F32PoolRowsMaxFn rows_max = f32_pool_row().rows_max;
      float* vbuf = thread_scratch(1, static_cast<size_t>(W.in));
      for (int64_t oh = 0; oh < H.out; ++oh, y += n) {
        const int64_t start = oh * H.s - H.pad_begin, lo = win.row_lo[oh], hi = win.row_hi[oh];
        if (hi <= lo) {
          std::fill(y, y + n, -std::numeric_limits<float>::infinity());
          continue;
        }
        for (int64_t i = lo; i < hi; ++i) rows[i - lo] = x + (start + i * H.d) * W.in;
        rows_max(W.in, 1, rows, hi - lo, vbuf);
        reduce_row(vbuf, W, win, y);
      }
      return;
    }
    float* hbuf = thread_scratch(1, static_cast<size_t>(H.in * n));
    for (int64_t ih = 0; ih < H.in; ++ih) reduce_row(x + ih * W.in, W, win, hbuf + ih * n);
    const F32VBinaryFn combine = f32_vbinary(max_ ? VBinary::max : VBinary::add).vv;
    float* const y0 = y;
    for (int64_t oh = 0; oh < H.out; ++oh, y += n) {
      const int64_t start = oh * H.s - H.pad_begin, lo = win.row_lo[oh], hi = win.row_hi[oh];
      if (hi <= lo) {
        std::fill(y, y + n, max_ ? -std::numeric_limits<float>::infinity() : 0.f);
        continue;
      }
      const float* first = hbuf + (start + lo * H.d) * n;
      if (hi - lo == 1) std::copy(first, first + n, y);
      else combine(n, first, hbuf + (start + (lo + 1) * H.d) * n, y);
      for (int64_t i = lo + 2; i < hi; ++i) combine(n, y, hbuf + (start + i * H.d) * n, y);
    }
    // One division pass over the plane (small planes would pay a call per output row).
    if (!max_) f32_vbinary(VBinary::div).vv(H.out * n, y0, win.divisor.data(), y0);
  }

  // h[ow] = max or sum of the valid taps x[ow * s - pad + j * d] of one input row.
  void reduce_row(const float* x, const AxisGeom& W, const Windows2d& win, float* h) const {
    const int64_t s = W.s, d = W.d, k = W.k, lo = win.col_lo, hi = win.col_hi;
    for (int64_t ow = 0; ow < W.out; ++ow) {  // border columns: clipped windows
      if (ow == lo) ow = hi;
      if (ow >= W.out) break;
      const int64_t start = ow * s - W.pad_begin;
      int64_t a, b;
      clip_taps(start, k, d, W.in, &a, &b);
      float acc = max_ ? -std::numeric_limits<float>::infinity() : 0.f;
      for (int64_t j = a; j < b; ++j) {
        const float v = x[start + j * d];
        acc = max_ ? nan_max(acc, v) : acc + v;
      }
      h[ow] = acc;
    }
    if (hi > lo) {
      const F32PoolRowKernels& kern = f32_pool_row();
      (max_ ? kern.max : kern.sum)(hi - lo, k, s, d, x + lo * s - W.pad_begin, h + lo);
    }
  }

  float window(const AxisGeom* g, const float* x, const int64_t* start, const int64_t* lo,
               const int64_t* hi) const {
    float acc = max_ ? -std::numeric_limits<float>::infinity() : 0.f;
    for (int64_t i = lo[0]; i < hi[0]; ++i) {
      const float* xd = x + (start[0] + i * g[0].d) * g[1].in * g[2].in;
      for (int64_t j = lo[1]; j < hi[1]; ++j) {
        const float* xh = xd + (start[1] + j * g[1].d) * g[2].in + start[2];
        if (max_) {
          for (int64_t k = lo[2]; k < hi[2]; ++k) {
            const float v = xh[k * g[2].d];
            acc = nan_max(acc, v);
          }
        } else {
          for (int64_t k = lo[2]; k < hi[2]; ++k) acc += xh[k * g[2].d];
        }
      }
    }
    if (max_) return acc;
    int64_t count = 1;
    for (int a = 0; a < 3; ++a) {
      if (count_include_pad_) {
        int64_t l, h;
        clip_taps(start[a] + g[a].pad_begin, g[a].k, g[a].d, g[a].in + g[a].pad_begin + g[a].pad_end, &l, &h);
        count *= h - l;
      } else {
        count *= hi[a] - lo[a];
      }
    }
    return count > 0 ? acc / static_cast<float>(count) : 0.f;
  }

  bool max_;
  WindowAttrs w_;
  bool count_include_pad_;
};

template <bool kMax>
std::unique_ptr<Kernel> make_pool(const KernelInit& init) {
  if (init.num_inputs() != 1 || init.input_dtypes[0] != DType::f32) return nullptr;
  if (init.num_outputs() > 1 && init.output_dtypes[1] != DType::undefined) return nullptr;  // Indices
  const std::vector<int64_t> k = init.attrs.get_ints("kernel_shape");
  if (k.empty() || k.size() > 3) return nullptr;
  WindowAttrs w;
  if (!w.read(init.attrs, k.size())) return nullptr;
  if (!kMax && init.opset < 19 && init.attrs.has("dilations")) return nullptr;
  return std::make_unique<PoolKernel>(kMax, std::move(w),
                                      init.attrs.get_int("count_include_pad", 0) != 0);
}
SLIVER_REGISTER_KERNEL("MaxPool", make_pool<true>);
SLIVER_REGISTER_KERNEL("AveragePool", make_pool<false>);

// ---- global pools: one value per (n, c) plane ----

class GlobalPoolKernel final : public Kernel {
 public:
  explicit GlobalPoolKernel(bool max) : max_(max) {}
  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    if (x.dtype != DType::f32 || x.rank() < 2) fail("expected a float input of rank >= 2");
    Shape yshape = x.shape;
    for (size_t i = 2; i < yshape.size(); ++i) yshape[i] = 1;
    Tensor y = Tensor::empty(DType::f32, yshape);
    const int64_t planes = x.shape[0] * x.shape[1];
    const int64_t n = planes ? x.numel() / planes : 0;
    const float* px = x.ptr<float>();
    float* py = y.ptr<float>();
    parallel_for(ctx.pool, planes, static_cast<double>(n), [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p)
        py[p] = max_ ? row_max(px + p * n, n) : row_sum(px + p * n, n) / static_cast<float>(n);
    });
    out[0] = std::move(y);
  }

 private:
  bool max_;
};

template <bool kMax>
std::unique_ptr<Kernel> make_global_pool(const KernelInit& init) {
  if (init.num_inputs() != 1 || init.input_dtypes[0] != DType::f32) return nullptr;
  return std::make_unique<GlobalPoolKernel>(kMax);
}
SLIVER_REGISTER_KERNEL("GlobalMaxPool", make_global_pool<true>);
SLIVER_REGISTER_KERNEL("GlobalAveragePool", make_global_pool<false>);

}  // namespace
}  // namespace sliver::ops
