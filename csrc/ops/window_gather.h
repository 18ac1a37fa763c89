// Convolution windows as operands of the sparse convolutions' products (sparse_ops.cc,
// sparse_q8_ops.cc).
//
//  im2col (NCHW): row r = (c, i, j) of a K x pixels matrix holds, for each output pixel, the
//    input value under window tap (i, j) of channel c -- the operand of weights on the left
//    (Y[oc, pixels] = W[oc, K] X[K, pixels]); K follows the weight's own [c][kh][kw] order.
//  im2row (NHWC): row p of a pixels x K matrix holds output pixel p's window values in (i, j, c)
//    order, C contiguous bytes per tap -- the operand of weights on the right.
//  phase grid (NCHW, FP32): the input once, zero padded and split by stride phase, read in
//    place by the kernels at one offset per window tap (PhaseGrid below): no K-fold copy.
// Window positions outside the input read `pad`: 0.f for float, the input zero point for 8-bit
// codes (x - zero_point = 0, so padding contributes exactly nothing to the integer sums).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <vector>

#include "ops/conv_geometry.h"

namespace sliver::ops {

/// The two spatial axes of a 2-D window (a 1-D conv has h = {1, 1, 1, 1, 1, 0, 0}).
struct Window2 {
  AxisGeom h, w;
  int64_t in_plane() const { return h.in * w.in; }
  int64_t out_plane() const { return h.out * w.out; }
  int64_t taps() const { return h.k * w.k; }
};

/// dst[t] = src[off + t * s] for t < n where that index lies in [0, len), else pad.
template <class T>
inline void gather_strided_row(T* dst, int64_t n, const T* src, int64_t len, int64_t off,
                               int64_t s, T pad) {
  if (s == 1) {
    // The common case, in plain loops the compiler vectorizes in place: rows are short (an
    // output row), and the divisions below or a library call per row cost tens of cycles each,
    // as much as the copy.
    const int64_t lo = std::min(n, std::max<int64_t>(0, -off));
    const int64_t hi = std::max(lo, std::min(n, len - off));
    T* __restrict d = dst;
    const T* __restrict from = src + off;
    for (int64_t t = 0; t < lo; ++t) d[t] = pad;
    for (int64_t t = lo; t < hi; ++t) d[t] = from[t];
    for (int64_t t = hi; t < n; ++t) d[t] = pad;
    return;
  }
  const int64_t lo = off >= 0 ? 0 : std::min(n, (-off + s - 1) / s);
  const int64_t hi = std::max(lo, std::min(n, off >= len ? 0 : (len - 1 - off) / s + 1));
  std::fill(dst, dst + lo, pad);
  for (int64_t t = lo; t < hi; ++t) dst[t] = src[off + t * s];
  std::fill(dst + hi, dst + n, pad);
}

/// Rows [r0, r1) of the im2col matrix of one image and group, for output pixels [p0, p1):
/// x is the group's first input channel (planes of in_plane() values), row r is written at
/// col + r * ld (ld >= p1 - p0; a sparse panel's row stride, say). The pixels' output-row
/// segments are found once and r walks (c, i, j) by counting: a division per row would cost as
/// much as copying it.
template <class T>
void im2col(const Window2& g, const T* x, T pad, int64_t r0, int64_t r1, int64_t p0, int64_t p1,
            T* col, int64_t ld) {
  const AxisGeom &H = g.h, &W = g.w;
  struct Segment {
    int64_t oh, ow0, at, n;  // pixels [at, at + n) of the range: output row oh from column ow0
  };
  std::vector<Segment> segs;
  for (int64_t p = p0; p < p1;) {
    const int64_t oh = p / W.out, ow0 = p - oh * W.out, n = std::min(p1 - p, W.out - ow0);
    segs.push_back({oh, ow0, p - p0, n});
    p += n;
  }
  int64_t j = r0 % W.k, i = (r0 / W.k) % H.k, c = r0 / (W.k * H.k);
  for (int64_t r = r0; r < r1; ++r) {
    const T* xc = x + c * g.in_plane();
    T* dst = col + r * ld;
    for (const Segment& sg : segs) {
      const int64_t ih = sg.oh * H.s - H.pad_begin + i * H.d;
      T* d = dst + sg.at;
      if (ih < 0 || ih >= H.in) {
        std::fill(d, d + sg.n, pad);
        continue;
      }
      gather_strided_row(d, sg.n, xc + ih * W.in, W.in, sg.ow0 * W.s + j * W.d - W.pad_begin,
                         W.s, pad);
    }
    if (++j == W.k) {
      j = 0;
      if (++i == H.k) {
        i = 0;
        ++c;
      }
    }
  }
}

/// A window's stride-phase grid (sparse.h, f32_spmm_left_grid): the input planes, zero padded
/// and split by stride phase, laid out so that every window tap is one fixed offset from the
/// output pixel. Output pixel (oy, ox) reads tap (i, j) of channel c at row oy + (i dh) / sh,
/// column ox + (j dw) / sw of the plane of (c, phase (i dh) % sh, phase (j dw) % sw); a plane
/// holds rows of `width` values, so the pixel's grid column q = oy * width + ox plus the tap's
/// offset koff[(c, i, j)] is its value's index. Only the phases some tap reads get a plane (a
/// strided 1x1 conv copies one phase, not sh * sw). Costs one pass over the input per image,
/// against K (= C kh kw) values written per output pixel by im2col.
struct PhaseGrid {
  int64_t width = 0, height = 0;  // of every plane
  int64_t phases_h = 0, phases_w = 0;
  std::vector<int64_t> phase_h, phase_w;  // the phases used, in plane order
  std::vector<int32_t> koff;              // [C kh kw], the weights' (c, i, j) order
  int64_t plane() const { return width * height; }
  int64_t values(int64_t channels) const { return channels * phases_h * phases_w * plane(); }
};

/// The grid of window g over `channels` input planes; false when its offsets overflow int32.
inline bool make_phase_grid(const Window2& g, int64_t channels, PhaseGrid* pg) {
  const AxisGeom &H = g.h, &W = g.w;
  auto axis = [](const AxisGeom& a, std::vector<int64_t>* phases, int64_t* extent) {
    std::vector<int64_t> slot(static_cast<size_t>(a.s), -1);
    int64_t reach = 0;
    for (int64_t i = 0; i < a.k; ++i) {
      const int64_t t = i * a.d;
      if (slot[t % a.s] < 0) {
        slot[t % a.s] = 0;
        phases->push_back(t % a.s);
      }
      reach = std::max(reach, t / a.s);
    }
    std::sort(phases->begin(), phases->end());
    *extent = a.out - 1 + reach + 1;
  };
  *pg = PhaseGrid{};
  axis(H, &pg->phase_h, &pg->height);
  axis(W, &pg->phase_w, &pg->width);
  pg->phases_h = static_cast<int64_t>(pg->phase_h.size());
  pg->phases_w = static_cast<int64_t>(pg->phase_w.size());
  if (pg->values(channels) + pg->plane() >= (int64_t{1} << 31)) return false;
  auto index = [](const std::vector<int64_t>& v, int64_t p) {
    return static_cast<int64_t>(std::lower_bound(v.begin(), v.end(), p) - v.begin());
  };
  pg->koff.resize(static_cast<size_t>(channels * H.k * W.k));
  size_t r = 0;
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t i = 0; i < H.k; ++i) {
      const int64_t th = i * H.d, a = index(pg->phase_h, th % H.s);
      for (int64_t j = 0; j < W.k; ++j) {
        const int64_t tw = j * W.d, b = index(pg->phase_w, tw % W.s);
        const int64_t plane = (c * pg->phases_h + a) * pg->phases_w + b;
        pg->koff[r++] =
            static_cast<int32_t>(plane * pg->plane() + th / H.s * pg->width + tw / W.s);
      }
    }
  }
  return true;
}

/// Planes of channels [c0, c1) of the grid (x: the first channel of the input planes; dst: the
/// grid's first value): plane (c, a, b) row y, column t holds x[c][y sh + a - pad][t sw + b -
/// pad], or `pad` outside the input.
template <class T>
void fill_phase_grid(const Window2& g, const PhaseGrid& pg, const T* x, int64_t c0, int64_t c1,
                     T pad, T* dst) {
  const AxisGeom &H = g.h, &W = g.w;
  for (int64_t c = c0; c < c1; ++c) {
    const T* xc = x + c * g.in_plane();
    for (int64_t a = 0; a < pg.phases_h; ++a) {
      for (int64_t b = 0; b < pg.phases_w; ++b) {
        T* d = dst + ((c * pg.phases_h + a) * pg.phases_w + b) * pg.plane();
        for (int64_t y = 0; y < pg.height; ++y, d += pg.width) {
          const int64_t ih = y * H.s + pg.phase_h[a] - H.pad_begin;
          if (ih < 0 || ih >= H.in) std::fill(d, d + pg.width, pad);
          else gather_strided_row(d, pg.width, xc + ih * W.in, W.in,
                                  pg.phase_w[b] - W.pad_begin, W.s, pad);
        }
      }
    }
  }
}

/// n elements from src to dst; window runs are short (C to kw * C bytes) and a library call
/// per run costs more than the copy, so runs of 16+ bytes move in 16-byte pieces (the last one
/// overlapping) and shorter ones in 8/4/1-byte pieces.
template <class T>
inline void copy_run(T* __restrict dst, const T* __restrict src, int64_t n) {
  auto* d = reinterpret_cast<unsigned char*>(dst);
  auto* s = reinterpret_cast<const unsigned char*>(src);
  int64_t b = n * static_cast<int64_t>(sizeof(T));
  if (b >= 16) {
    // Vector moves, not memcpy pieces: GCC turns a loop of those into a memmove call, which
    // cost ~170 ns per 21-byte run on a Xeon (ResNet-18's stem gather: 15 ms instead of 1.7).
    int64_t i = 0;
#if defined(__SSE2__)
    for (; i + 16 <= b; i += 16)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
    if (i < b)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + b - 16),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + b - 16)));
#else
    for (; i + 16 <= b; i += 16) std::memcpy(d + i, s + i, 16);
    if (i < b) std::memcpy(d + b - 16, s + b - 16, 16);
#endif
    return;
  }
  if (b >= 8) {
    std::memcpy(d, s, 8);
    std::memcpy(d + b - 8, s + b - 8, 8);
    return;
  }
  if (b >= 4) {
    std::memcpy(d, s, 4);
    std::memcpy(d + b - 4, s + b - 4, 4);
    return;
  }
  for (int64_t i = 0; i < b; ++i) d[i] = s[i];
}

/// Rows [r0, r1) of the im2row matrix of an NHWC batch x [N, H, W, C]: output pixel
/// r = (n * oh + y) * ow + x gets K = kh * kw * C values at a + (r - r0) * K.
template <class T>
void im2row_nhwc(const Window2& g, int64_t C, const T* x, T pad, int64_t r0, int64_t r1, T* a) {
  const AxisGeom &H = g.h, &W = g.w;
  const int64_t K = g.taps() * C, row = W.k * C;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t ox = r % W.out, oy = (r / W.out) % H.out, n = r / g.out_plane();
    const T* img = x + n * g.in_plane() * C;
    T* dst = a + (r - r0) * K;
    const int64_t ix0 = ox * W.s - W.pad_begin;
    const bool inside_x = ix0 >= 0 && ix0 + (W.k - 1) * W.d < W.in;
    for (int64_t ky = 0; ky < H.k; ++ky, dst += row) {
      const int64_t iy = oy * H.s - H.pad_begin + ky * H.d;
      if (iy < 0 || iy >= H.in) {
        std::fill(dst, dst + row, pad);
        continue;
      }
      const T* in_row = img + iy * W.in * C;
      if (inside_x && W.d == 1) {
        copy_run(dst, in_row + ix0 * C, row);
        continue;
      }
      for (int64_t kx = 0; kx < W.k; ++kx) {
        const int64_t ix = ix0 + kx * W.d;
        if (ix < 0 || ix >= W.in) std::fill(dst + kx * C, dst + (kx + 1) * C, pad);
        else copy_run(dst + kx * C, in_row + ix * C, C);
      }
    }
  }
}

}  // namespace sliver::ops
