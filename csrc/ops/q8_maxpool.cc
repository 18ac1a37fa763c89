// MaxPool on 8-bit codes (uint8 / int8, ONNX MaxPool since opset 12), 1-3 spatial axes, NC...
// layout; and com.microsoft:NhwcMaxPool, the same on channels-last 2-D images (what the layout
// pass qdq_nhwc writes between channels-last convs). qdq_commute moves MaxPool between a DQ and
// a Q onto the codes (max commutes with the increasing DQ), so a quantized CNN pools without
// leaving the integer domain. Registered under MaxPool after the float kernel, which declines
// these types.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "ops/common.h"
#include "ops/conv_geometry.h"

namespace sliver::ops {
namespace {

// Taps [lo, hi) of a window starting at `start` (dilation d, k taps) inside [0, extent).
inline void window_taps(int64_t start, int64_t k, int64_t d, int64_t extent, int64_t* lo,
                        int64_t* hi) {
  *lo = start >= 0 ? 0 : (-start + d - 1) / d;
  *hi = start >= extent ? 0 : std::min<int64_t>(k, (extent - start + d - 1) / d);
  if (*hi < *lo) *hi = *lo;
}

class Q8MaxPoolKernel final : public Kernel {
 public:
  explicit Q8MaxPoolKernel(WindowAttrs w) : w_(std::move(w)) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    const size_t nsp = w_.kernel.size();
    if ((x.dtype != DType::u8 && x.dtype != DType::i8) ||
        x.rank() != static_cast<int64_t>(nsp) + 2)
      fail("MaxPool (8-bit): expected a uint8/int8 input of rank ", nsp + 2, ", got ",
           dtype_name(x.dtype), shape_str(x.shape));
    AxisGeom g[3];
    for (size_t i = 0; i < 3 - nsp; ++i) g[i] = AxisGeom{1, 1, 1, 1, 1, 0, 0};
    Shape ys = {x.shape[0], x.shape[1]};
    for (size_t i = 0; i < nsp; ++i) {
      g[3 - nsp + i] = resolve_axis(w_, i, x.shape[2 + i]);
      ys.push_back(g[3 - nsp + i].out);
    }
    out[0] = Tensor::empty(x.dtype, ys);
    if (x.dtype == DType::u8) {
      pool<uint8_t>(ctx, x, g, out[0]);
    } else {
      pool<int8_t>(ctx, x, g, out[0]);
    }
  }
  std::string describe() const override { return "native MaxPool (8-bit)"; }

 private:
  template <class T>
  void pool(RunContext& ctx, const Tensor& x, const AxisGeom* g, Tensor& y) const {
    const int64_t planes = x.shape[0] * x.shape[1];
    const int64_t in_plane = g[0].in * g[1].in * g[2].in;
    const int64_t out_plane = g[0].out * g[1].out * g[2].out;
    const int64_t taps = g[0].k * g[1].k * g[2].k;
    const T* px = x.ptr<T>();
    T* py = y.ptr<T>();
    parallel_for(ctx.pool, planes, static_cast<double>(out_plane * taps), [&](int64_t b,
                                                                              int64_t e) {
      for (int64_t p = b; p < e; ++p) plane<T>(g, px + p * in_plane, py + p * out_plane);
    });
  }

  template <class T>
  static void plane(const AxisGeom* g, const T* x, T* y) {
    int64_t lo[3], hi[3], start[3];
    const int64_t hw = g[1].in * g[2].in;
    for (int64_t od = 0; od < g[0].out; ++od) {
      start[0] = od * g[0].s - g[0].pad_begin;
      window_taps(start[0], g[0].k, g[0].d, g[0].in, &lo[0], &hi[0]);
      for (int64_t oh = 0; oh < g[1].out; ++oh) {
        start[1] = oh * g[1].s - g[1].pad_begin;
        window_taps(start[1], g[1].k, g[1].d, g[1].in, &lo[1], &hi[1]);
        for (int64_t ow = 0; ow < g[2].out; ++ow) {
          start[2] = ow * g[2].s - g[2].pad_begin;
          window_taps(start[2], g[2].k, g[2].d, g[2].in, &lo[2], &hi[2]);
          // An empty window (only padding) never happens for valid attributes; it yields the
          // type's lowest code, as a float -inf would saturate to.
          T m = std::numeric_limits<T>::lowest();
          for (int64_t i = lo[0]; i < hi[0]; ++i) {
            const T* xd = x + (start[0] + i * g[0].d) * hw;
            for (int64_t j = lo[1]; j < hi[1]; ++j) {
              const T* xr = xd + (start[1] + j * g[1].d) * g[2].in + start[2];
              for (int64_t k = lo[2]; k < hi[2]; ++k) m = std::max(m, xr[k * g[2].d]);
            }
          }
          *y++ = m;
        }
      }
    }
  }

  WindowAttrs w_;
};

// dst[c] = max over the n rows of rows[r][c]. Channels go 16 at a time through a fixed-size
// block the compiler keeps in one vector register across the rows (a running max in dst,
// re-stored per row, measured several times slower for the C = 16-64 of small CNNs). int8 codes
// are compared as uint8 after flipping their sign bit (x ^ 0x80 is order-preserving): baseline
// x86-64 has an unsigned byte max (pmaxub) but no signed one.
template <class T>
inline void max_rows(T* __restrict dst, const T* const* rows, int64_t n, int64_t C) {
  constexpr uint8_t kFlip = std::is_signed_v<T> ? 0x80 : 0x00;
  uint8_t* __restrict d = reinterpret_cast<uint8_t*>(dst);
  int64_t c = 0;
  for (; c + 16 <= C; c += 16) {
    uint8_t m[16];
    const uint8_t* __restrict s0 = reinterpret_cast<const uint8_t*>(rows[0]) + c;
    for (int i = 0; i < 16; ++i) m[i] = s0[i] ^ kFlip;
    for (int64_t r = 1; r < n; ++r) {
      const uint8_t* __restrict src = reinterpret_cast<const uint8_t*>(rows[r]) + c;
      for (int i = 0; i < 16; ++i) {
        const uint8_t v = src[i] ^ kFlip;
        m[i] = m[i] > v ? m[i] : v;
      }
    }
    for (int i = 0; i < 16; ++i) d[c + i] = m[i] ^ kFlip;
  }
  for (; c < C; ++c) {
    T m = rows[0][c];
    for (int64_t r = 1; r < n; ++r) m = m > rows[r][c] ? m : rows[r][c];
    dst[c] = m;
  }
}

// NHWC: every output pixel is the elementwise max of the C-long rows its window covers.
class NhwcQ8MaxPoolKernel final : public Kernel {
 public:
  explicit NhwcQ8MaxPoolKernel(WindowAttrs w) : w_(std::move(w)) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = need(in, 0);
    if ((x.dtype != DType::u8 && x.dtype != DType::i8) || x.rank() != 4)
      fail("NhwcMaxPool: expected a uint8/int8 NHWC input, got ", dtype_name(x.dtype),
           shape_str(x.shape));
    const AxisGeom gy = resolve_axis(w_, 0, x.shape[1]), gx = resolve_axis(w_, 1, x.shape[2]);
    out[0] = Tensor::empty(x.dtype, {x.shape[0], gy.out, gx.out, x.shape[3]});
    if (x.dtype == DType::u8) {
      pool<uint8_t>(ctx, x, gy, gx, out[0]);
    } else {
      pool<int8_t>(ctx, x, gy, gx, out[0]);
    }
  }
  std::string describe() const override { return "native NhwcMaxPool (8-bit)"; }

 private:
  template <class T>
  void pool(RunContext& ctx, const Tensor& x, const AxisGeom& gy, const AxisGeom& gx,
            Tensor& y) const {
    const int64_t C = x.shape[3], rows = x.shape[0] * gy.out;
    const T* px = x.ptr<T>();
    T* py = y.ptr<T>();
    parallel_for(ctx.pool, rows, static_cast<double>(gx.out * C * gy.k * gx.k),
                 [&](int64_t b, int64_t e) {
      std::vector<const T*> rows(static_cast<size_t>(gy.k * gx.k));
      for (int64_t r = b; r < e; ++r) {
        const int64_t n = r / gy.out, oy = r % gy.out;
        int64_t ylo, yhi;
        const int64_t y0 = oy * gy.s - gy.pad_begin;
        window_taps(y0, gy.k, gy.d, gy.in, &ylo, &yhi);
        for (int64_t ox = 0; ox < gx.out; ++ox) {
          int64_t xlo, xhi;
          const int64_t x0 = ox * gx.s - gx.pad_begin;
          window_taps(x0, gx.k, gx.d, gx.in, &xlo, &xhi);
          T* dst = py + (r * gx.out + ox) * C;
          int64_t nr = 0;
          for (int64_t i = ylo; i < yhi; ++i) {
            const T* row = px + ((n * gy.in + y0 + i * gy.d) * gx.in) * C;
            for (int64_t j = xlo; j < xhi; ++j) rows[nr++] = row + (x0 + j * gx.d) * C;
          }
          if (nr == 0) {  // only padding (see Q8MaxPoolKernel::plane)
            std::fill(dst, dst + C, std::numeric_limits<T>::lowest());
          } else {
            max_rows(dst, rows.data(), nr, C);
          }
        }
      }
    });
  }

  WindowAttrs w_;
};

std::unique_ptr<Kernel> make_nhwc_q8_maxpool(const KernelInit& init) {
  if (init.num_inputs() != 1) return nullptr;
  const DType t = init.input_dtypes[0];
  if (t != DType::u8 && t != DType::i8 && t != DType::undefined) return nullptr;
  const std::vector<int64_t> k = init.attrs.get_ints("kernel_shape");
  if (k.size() != 2) return nullptr;
  WindowAttrs w;
  if (!w.read(init.attrs, 2)) return nullptr;
  return std::make_unique<NhwcQ8MaxPoolKernel>(std::move(w));
}

std::unique_ptr<Kernel> make_q8_maxpool(const KernelInit& init) {
  if (init.num_inputs() != 1) return nullptr;
  const DType t = init.input_dtypes[0];
  if (t != DType::u8 && t != DType::i8) return nullptr;
  if (init.num_outputs() > 1 && init.output_dtypes[1] != DType::undefined) return nullptr;
  if (init.attrs.get_int("storage_order", 0) != 0) return nullptr;
  const std::vector<int64_t> k = init.attrs.get_ints("kernel_shape");
  if (k.empty() || k.size() > 3) return nullptr;
  WindowAttrs w;
  if (!w.read(init.attrs, k.size())) return nullptr;
  return std::make_unique<Q8MaxPoolKernel>(std::move(w));
}

}  // namespace

SLIVER_REGISTER_KERNEL("MaxPool", make_q8_maxpool);
SLIVER_REGISTER_KERNEL("com.microsoft:NhwcMaxPool", make_nhwc_q8_maxpool);

}  // namespace sliver::ops
