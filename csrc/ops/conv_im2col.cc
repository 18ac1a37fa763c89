// Im2col panels and their input planes (see conv_im2col.h).
#include "ops/conv_im2col.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <type_traits>

#include "ops/common.h"

namespace sliver::ops {
namespace {

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

constexpr float kZeros[32] = {};

// n <= 32 floats src to dst, n known at run time only: one fixed-size move per set bit of n (no
// loop, which the compiler would turn into a call to memmove, costly at these lengths).
inline void copy_floats(float* __restrict dst, const float* __restrict src, int64_t n) {
  assert(n >= 0 && n <= 32);
  if (n & 32) {
    std::memcpy(dst, src, sizeof(float) * 32);
    return;  // n == 32
  }
  int64_t t = 0;
  if (n & 16) {
    std::memcpy(dst, src, sizeof(float) * 16);
    t = 16;
  }
  if (n & 8) {
    std::memcpy(dst + t, src + t, sizeof(float) * 8);
    t += 8;
  }
  if (n & 4) {
    std::memcpy(dst + t, src + t, sizeof(float) * 4);
    t += 4;
  }
  if (n & 2) {
    std::memcpy(dst + t, src + t, sizeof(float) * 2);
    t += 2;
  }
  if (n & 1) dst[t] = src[t];
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
  const int64_t n = pb - pa;
  if constexpr (S == 1) {
    // Any other panel, stride 1: runs of adjacent inputs (one per output row, merged where
    // they meet, e.g. all of a pointwise conv's panel), copied per K row.
    int64_t run_dst[NR], run_src[NR], run_len[NR], runs = 0;
    for (int64_t p = pa; p < pb;) {
      const int64_t len = std::min(pb - p, W.out - p % W.out);
      const int64_t src = (p / W.out - oh) * in_row_step + (p % W.out - ow);
      if (runs > 0 && run_src[runs - 1] + run_len[runs - 1] == src) {
        run_len[runs - 1] += len;
      } else {
        run_dst[runs] = p - pa;
        run_src[runs] = src;
        run_len[runs++] = len;
      }
      p += len;
    }
    for (int64_t ci = 0; ci < cg; ++ci, xr += in.plane) {
      const float* src = xr;
      for (int64_t i = 0; i < H.k; ++i, src += row_step) {
        for (int64_t j = 0; j < kw; ++j, d += NR) {
          const float* sj = src + tap[j];
          if (runs == 1 && n == NR) {
            copy_run<NR, 1>(d, sj + run_src[0], 1);
            continue;
          }
          for (int64_t r = 0; r < runs; ++r)
            copy_floats(d + run_dst[r], sj + run_src[r], run_len[r]);
          copy_floats(d + n, kZeros, NR - n);
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
  for (int64_t ci = 0; ci < cg; ++ci, xr += in.plane) {
    const float* src = xr;
    for (int64_t i = 0; i < H.k; ++i, src += row_step) {
      for (int64_t j = 0; j < kw; ++j, d += NR) {
        const float* sj = src + tap[j];
        for (int t = 0; t < NR; ++t) d[t] = sj[off[t]];
        copy_floats(d + n, kZeros, NR - n);
      }
    }
  }
}

// Whether some window reaches outside the input (then the input is copied with its padding).
inline bool needs_padding(const ConvGeom& g) {
  return g.h.pad_begin > 0 || g.w.pad_begin > 0 || window_extent(g.h) > g.h.in ||
         window_extent(g.w) > g.w.in;
}

}  // namespace

void im2col_panels(int width, const ConvGeom& g, const Im2colSource& in, int64_t cg,
                   const float* x, float* dst, int64_t p0, int64_t p1, int64_t q0, int64_t q1,
                   const RowTiles* tiles) {
  using PanelFn = void (*)(const ConvGeom&, const Im2colSource&, int64_t, const float*, float*,
                           int64_t, int64_t);
  auto by_step = [&](auto nr_c, auto l_c) -> PanelFn {
    constexpr int R = decltype(nr_c)::value, L = decltype(l_c)::value;
    return in.step == 1 ? im2col_panel<R, 1, L> : in.step == 2 ? im2col_panel<R, 2, L>
                                                               : im2col_panel<R, 0, L>;
  };
  // Output rows narrower than a panel and dividing it: each panel is whole rows (not so for
  // row tiles, which start anywhere).
  auto pick = [&](auto nr_c) -> PanelFn {
    constexpr int R = decltype(nr_c)::value;
    using I = std::integral_constant<int, 0>;
    if (tiles || R % g.w.out != 0 || g.w.out >= R) return by_step(nr_c, I{});
    switch (g.w.out) {
      case 1: return by_step(nr_c, std::integral_constant<int, 1>{});
      case 2: return by_step(nr_c, std::integral_constant<int, R % 2 == 0 ? 2 : 0>{});
      case 4: return by_step(nr_c, std::integral_constant<int, R % 4 == 0 ? 4 : 0>{});
      case 8: return by_step(nr_c, std::integral_constant<int, R % 8 == 0 ? 8 : 0>{});
      default: return by_step(nr_c, I{});
    }
  };
  PanelFn fn;
  switch (width) {
    case 4: fn = pick(std::integral_constant<int, 4>{}); break;
    case 6: fn = pick(std::integral_constant<int, 6>{}); break;
    case 8: fn = pick(std::integral_constant<int, 8>{}); break;
    case 16: fn = pick(std::integral_constant<int, 16>{}); break;
    case 32: fn = pick(std::integral_constant<int, 32>{}); break;
    default: fail("conv: no im2col for GEMM panels of ", width, " pixels");
  }
  const int64_t k = cg * g.h.k * g.w.k;
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t pa = tiles ? tiles->row(q) : p0 + q * width;
    const int64_t pb = tiles ? pa + tiles->rows(q) : std::min(p1, pa + width);
    fn(g, in, cg, x, dst + q * k * width, pa, pb);
  }
}

Im2colSource im2col_source(const ConvGeom& g, const float* x, int64_t kh, int64_t kw,
                           ThreadPool* pool, int slot) {
  const AxisGeom &H = g.h, &W = g.w;
  const bool phased = W.s > 1 && kh * kw > 1;
  Im2colSource in;
  if (!needs_padding(g) && !phased) {
    in.x = x;
    in.plane = g.in_plane();
    in.ld = W.in;
    in.step = W.s;
    for (int64_t j = 0; j < W.k; ++j) in.tap.push_back(j * W.d);
    return in;
  }
  const int64_t ph = window_extent(H), phases = phased ? W.s : 1;
  const int64_t pws = (window_extent(W) + phases - 1) / phases;
  in.ld = phases * pws;
  in.plane = ph * in.ld;
  in.step = phased ? 1 : W.s;
  for (int64_t j = 0; j < W.k; ++j)  // tap j reads padded column j * d: phase, then index
    in.tap.push_back(phased ? (j * W.d) % W.s * pws + (j * W.d) / W.s : j * W.d);
  float* xp = thread_scratch(slot, static_cast<size_t>(g.n * g.c * in.plane));
  parallel_for(pool, g.n * g.c, static_cast<double>(in.plane), [&](int64_t c0, int64_t c1) {
    pad_planes(g, x, xp, c0, c1, ph, pws, phases);
  });
  in.x = xp;
  return in;
}

}  // namespace sliver::ops
