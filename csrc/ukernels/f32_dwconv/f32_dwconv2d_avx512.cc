// f32_dwconv2d_{3x3,5x5}s{1,2}_avx512: depthwise plane kernels on zmm (contract in
// f32_dwconv.h) for the geometries of f32_dwconv2d_flat(); the others go to the AVX2 kernels.
//
// The AVX2 kernels walk the plane by rows of 8 outputs, so a 7- or 14-wide row wastes lanes and
// small planes are all edge columns (hence the channel-blocked kernels, which pay two transposes
// and a padded copy per plane). Here the output plane is one flat run of out_h * out_w floats,
// 16 outputs per vector whatever the row width. With stride 1 and the output as large as the
// input, tap (i, j) of output q reads x[q + (i - pad_top) * W + (j - pad_left)]: one load per
// tap, its lanes masked where the window leaves the plane. A column test (0 <= ow + dj < W, ow
// kept per lane as q mod W) covers the left and right edges; the top and bottom ones only
// touch the vectors near the plane's ends, which also test the flat index against [0, H * W).
// AVX-512 masked loads never touch masked-off lanes, so no padding or copy is needed.
//
// Stride 2 with the input twice the output (both axes) splits the plane into its four
// (row, column) parity planes, each out_h x out_w, in scratch (a band of rows at a time as the
// vectors reach them); tap (i, j) then reads parity plane ((i - pad_top) mod 2,
// (j - pad_left) mod 2) at the flat offset floor((i - pad_top) / 2) * W +
// floor((j - pad_left) / 2), the stride-1 case again.
//
// Each output is one FMA chain over the taps in row-major order from the bias, as the scalar
// twin sums them.
#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <cstdint>

#include "f32_dwconv.h"
#include "ukernels/unroll.h"

namespace sliver {
namespace {

inline __mmask16 first_lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// Rows [r0, r1) of the four parity planes of x (in_w = 2 * ow, planes oh * ow floats apart at
// dst, plane a * 2 + b holding x[2r + a][2c + b] at r * ow + c).
__attribute__((noinline)) void split_rows(const float* x, int64_t r0, int64_t r1, int64_t oh,
                                          int64_t ow, float* dst) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28,
                                         30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const int64_t plane = oh * ow;
  for (int64_t i = 2 * r0; i < 2 * r1; ++i) {
    const int64_t r = i >> 1, a = i & 1;
    const float* src = x + i * 2 * ow;
    float* e = dst + a * 2 * plane + r * ow;
    float* o = e + plane;
    for (int64_t c = 0; c < ow; c += 16) {
      const int64_t n = ow - c;
      __m512 lo, hi;
      if (n >= 16) {
        lo = _mm512_loadu_ps(src + 2 * c);
        hi = _mm512_loadu_ps(src + 2 * c + 16);
      } else {
        lo = _mm512_maskz_loadu_ps(first_lanes(2 * n), src + 2 * c);
        hi = _mm512_maskz_loadu_ps(first_lanes(2 * n - 16), src + 2 * c + 16);
      }
      // Four rows ahead: large planes come from L3 or memory, one row stream at a time.
      _mm_prefetch(reinterpret_cast<const char*>(src + 8 * ow + 2 * c), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(src + 8 * ow + 2 * c + 16), _MM_HINT_T0);
      const __mmask16 m = first_lanes(n);
      _mm512_mask_storeu_ps(e + c, m, _mm512_permutex2var_ps(lo, even, hi));
      _mm512_mask_storeu_ps(o + c, m, _mm512_permutex2var_ps(lo, odd, hi));
    }
  }
}

// floor(a / 2) for small a of either sign.
constexpr int floor_half(int a) { return a >= 0 ? a / 2 : -((1 - a) / 2); }

// The flat pass over an out_h x out_w output whose tap (i, j) reads src[t] at flat offset
// off[t] (t = i * K + j), column shift DJ(j) (PL: pad_left, compile time so that the column
// tests of the taps with no shift vanish).
template <int K, int S, int PL>
struct Flat {
  static constexpr int dj(int j) { return S == 1 ? j - PL : floor_half(j - PL); }

  template <bool kClamp>
  static void run(const F32Dwconv2dParams& p, const float* const* src, const int64_t* off) {
    const int64_t W = p.out_w, HW = p.out_h * p.out_w;
    __m512 w[K * K];
    for (int t = 0; t < K * K; ++t) w[t] = _mm512_set1_ps(p.w[t]);
    const __m512 bias = _mm512_set1_ps(p.bias), lo = _mm512_set1_ps(p.lo),
                 hi = _mm512_set1_ps(p.hi);
    int64_t min_off = 0, max_off = 0;
    for (int t = 0; t < K * K; ++t) {
      min_off = off[t] < min_off ? off[t] : min_off;
      max_off = off[t] > max_off ? off[t] : max_off;
    }
    // Vectors [v_lo, v_hi) read inside [0, HW) on every tap: only the column tests apply.
    const int64_t q_lo = -min_off, q_hi = HW - max_off - 16;  // first q0 / last q0 inside
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i wv = _mm512_set1_epi32(static_cast<int32_t>(W));
    // ow = q mod W per lane (subtractions: a division per lane costs more than a 7x7 plane).
    __m512i ow = iota;
    for (__mmask16 m; (m = _mm512_cmp_epi32_mask(ow, wv, _MM_CMPINT_NLT)) != 0;)
      ow = _mm512_mask_sub_epi32(ow, m, ow, wv);
    const __m512i step = _mm512_set1_epi32(static_cast<int32_t>(16 % W));
    const __m512i hwv = _mm512_set1_epi32(static_cast<int32_t>(HW));
    // Stride 2 splits the parity planes in bands of rows (about kSplitBand floats of each),
    // each just before the first vector that reads it, so that on large planes the input's
    // loads (often from memory) overlap the FMAs.
    constexpr int64_t kSplitBand = 512;
    const int64_t band = (kSplitBand + W - 1) / W;
    int64_t split = 0;
    for (int64_t q0 = 0; q0 < HW; q0 += 16) {
      if constexpr (S == 2) {
        if (split < p.out_h && split * W <= q0 + 15 + max_off) {
          const int64_t to = std::min(p.out_h, std::max(split + band, (q0 + 15 + max_off) / W + 1));
          split_rows(p.x, split, to, p.out_h, W, p.scratch);
          split = to;
        }
      }
      __mmask16 cm[K];
      unroll<K>([&](auto jc) SLIVER_ALWAYS {
        constexpr int d = dj(decltype(jc)::value);
        if constexpr (d < 0)
          cm[jc] = _mm512_cmp_epi32_mask(ow, _mm512_set1_epi32(-d), _MM_CMPINT_NLT);
        else if constexpr (d > 0)
          cm[jc] = _mm512_cmp_epi32_mask(ow, _mm512_sub_epi32(wv, _mm512_set1_epi32(d)),
                                         _MM_CMPINT_LT);
        else
          cm[jc] = 0xffff;
      });
      __m512 acc = bias;
      if (q0 >= q_lo && q0 <= q_hi) {
        unroll<K>([&](auto i) SLIVER_ALWAYS {
          unroll<K>([&](auto j) SLIVER_ALWAYS {
            constexpr int t = decltype(i)::value * K + decltype(j)::value;
            const float* a = src[t] + q0 + off[t];
            const __m512 v = dj(decltype(j)::value) == 0 ? _mm512_loadu_ps(a)
                                                          : _mm512_maskz_loadu_ps(cm[j], a);
            acc = _mm512_fmadd_ps(v, w[t], acc);
          });
        });
      } else {  // near the ends: each tap's flat index must also fall inside the plane
        const __m512i q = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(q0)), iota);
        unroll<K>([&](auto i) SLIVER_ALWAYS {
          unroll<K>([&](auto j) SLIVER_ALWAYS {
            constexpr int t = decltype(i)::value * K + decltype(j)::value;
            const __mmask16 in = _mm512_mask_cmp_epu32_mask(
                cm[j], _mm512_add_epi32(q, _mm512_set1_epi32(static_cast<int32_t>(off[t]))),
                hwv, _MM_CMPINT_LT);
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(in, src[t] + q0 + off[t]), w[t], acc);
          });
        });
      }
      if constexpr (kClamp) acc = _mm512_min_ps(_mm512_max_ps(acc, lo), hi);  // NaN -> lo
      if (q0 + 16 <= HW) _mm512_storeu_ps(p.y + q0, acc);
      else _mm512_mask_storeu_ps(p.y + q0, first_lanes(HW - q0), acc);
      ow = _mm512_add_epi32(ow, step);
      ow = _mm512_mask_sub_epi32(ow, _mm512_cmp_epi32_mask(ow, wv, _MM_CMPINT_NLT), ow, wv);
    }
  }

  static void plane(const F32Dwconv2dParams& p) {
    const float* src[K * K];
    int64_t off[K * K];
    const int64_t W = p.out_w, HW = p.out_h * p.out_w;
    for (int i = 0; i < K; ++i) {
      for (int j = 0; j < K; ++j) {
        const int di = i - static_cast<int>(p.pad_top), dc = j - PL;
        if constexpr (S == 1) {
          src[i * K + j] = p.x;
          off[i * K + j] = di * W + dc;
        } else {  // parity plane (di mod 2, dc mod 2), see split_parities
          const int a = di - 2 * floor_half(di), b = dc - 2 * floor_half(dc);
          src[i * K + j] = p.scratch + (a * 2 + b) * HW;
          off[i * K + j] = floor_half(di) * W + floor_half(dc);
        }
      }
    }
    if (p.clamp) run<true>(p, src, off);
    else run<false>(p, src, off);
  }
};

template <int K, int S, F32Dwconv2dFn kOther>
void plane(const F32Dwconv2dParams& p) {
  assert(p.pad_top >= 0 && p.pad_top < K && p.pad_left >= 0 && p.pad_left < K);
  if (!f32_dwconv2d_flat(S, p.in_h, p.in_w, p.out_h, p.out_w)) {
    kOther(p);
    return;
  }
  assert(S == 1 || p.scratch);
  // pad_left picks the instance: its columns' shifts are compile-time.
  unroll<K>([&](auto pl) SLIVER_ALWAYS {
    if (p.pad_left == decltype(pl)::value) Flat<K, S, decltype(pl)::value>::plane(p);
  });
}

}  // namespace

void f32_dwconv2d_3x3s1_avx512(const F32Dwconv2dParams& p) {
  plane<3, 1, f32_dwconv2d_3x3s1_avx2>(p);
}
void f32_dwconv2d_3x3s2_avx512(const F32Dwconv2dParams& p) {
  plane<3, 2, f32_dwconv2d_3x3s2_avx2>(p);
}
void f32_dwconv2d_5x5s1_avx512(const F32Dwconv2dParams& p) {
  plane<5, 1, f32_dwconv2d_5x5s1_avx2>(p);
}
void f32_dwconv2d_5x5s2_avx512(const F32Dwconv2dParams& p) {
  plane<5, 2, f32_dwconv2d_5x5s2_avx2>(p);
}

}  // namespace sliver
