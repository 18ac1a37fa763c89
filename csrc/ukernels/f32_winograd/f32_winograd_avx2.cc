// f32_wino2x2_3x3_avx2: the Winograd transforms (contract in f32_winograd.h), 8 tiles per vector.
//
// Input: the 8 tiles of a vector read columns 2t .. 2t + 17 of each of their 4 rows; two pairs
// of loads of 16 adjacent inputs (from 2t and 2t + 2), split into even and odd columns by
// in-lane shuffles, give the patches' columns 0/1 and 2/3, with the tiles in the lane order
// 0 1 4 5 | 2 3 6 7 (f32_winograd.h's group order). The row transform d B then works on whole
// vectors, and B^T (d B) combines the rows. Groups reaching past the plane's left or right
// edge use masked loads, rows above or below it read as 0; a run's last 1-7 tiles take 128-bit
// vectors (masked stores for fewer than 4). Output: A^T M A for 8 tiles gives the four outputs of each tile as four
// vectors; interleaving the two columns (in group order, no lane crossing) makes each output
// row 16 adjacent floats. Same sums in the same order as the scalar kernels, so the results
// are identical; ragged ends are masked.
#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <cstdint>

#include "f32_winograd.h"

namespace sliver {
namespace {

// Even and odd elements of the 16 floats a:b.
inline void deinterleave(__m256 a, __m256 b, __m256* even, __m256* odd) {
  const __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));  // a0 a2 b0 b2 | a4 a6 b4 b6
  const __m256 o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
  *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
  *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
}

// Lanes [0, n).
inline __m256i first_lanes(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::min<int64_t>(n, 8))),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

inline __m256 clamp(__m256 v, __m256 lo, __m256 hi) {
  return _mm256_min_ps(_mm256_max_ps(v, lo), hi);  // NaN -> lo, as the GEMM epilogue
}

}  // namespace

namespace {

// Lanes l of 8 whose column c + l lies in [0, w).
inline __m256i columns_in(int64_t c, int64_t w) {
  const __m256i col = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(c)),
                                       _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  return _mm256_and_si256(_mm256_cmpgt_epi32(col, _mm256_set1_epi32(-1)),
                          _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(w)), col));
}

// V for 8 tiles (kW = 8, lanes in group order) or up to 4 tiles (kW = 4, natural order; only
// the first n are stored) whose patches start at column c of rows[0..3] (nullptr: a row
// outside the plane); kMasked: columns outside [0, w) read as 0 (masked loads never touch them).
template <int kW>
struct VecOf;  // the vector of kW floats
template <>
struct VecOf<8> {
  using type = __m256;
};
template <>
struct VecOf<4> {
  using type = __m128;
};

template <int kW, bool kMasked>
inline void input_group(const float* const* rows, int64_t c, int64_t w, float* v, int64_t xs,
                        int64_t n = kW) {
  using V = typename VecOf<kW>::type;
  auto zero = [] {
    if constexpr (kW == 8) return _mm256_setzero_ps();
    else return _mm_setzero_ps();
  };
  auto load = [&](const float* row, int64_t at) -> V {
    if constexpr (kW == 8) {
      return kMasked ? _mm256_maskload_ps(row + at, columns_in(c + at, w))
                     : _mm256_loadu_ps(row + at);
    } else {
      return kMasked ? _mm_maskload_ps(row + at, _mm256_castsi256_si128(columns_in(c + at, w)))
                     : _mm_loadu_ps(row + at);
    }
  };
  auto shuffle = [](V a, V b, auto imm) -> V {
    if constexpr (kW == 8) return _mm256_shuffle_ps(a, b, decltype(imm)::value);
    else return _mm_shuffle_ps(a, b, decltype(imm)::value);
  };
  using Even = std::integral_constant<int, _MM_SHUFFLE(2, 0, 2, 0)>;
  using Odd = std::integral_constant<int, _MM_SHUFFLE(3, 1, 3, 1)>;
  V u[4][4];
  for (int r = 0; r < 4; ++r) {
    V a = zero(), b = zero(), a2 = zero(), b2 = zero();
    if (rows[r]) {
      const float* d = rows[r] + c;
      a = load(d, 0);
      b = load(d, kW);
      a2 = load(d, 2);
      b2 = load(d, kW + 2);
    }
    const V e0 = shuffle(a, b, Even{}), o0 = shuffle(a, b, Odd{});
    const V e2 = shuffle(a2, b2, Even{}), o2 = shuffle(a2, b2, Odd{});
    if constexpr (kW == 8) {
      u[r][0] = _mm256_sub_ps(e0, e2);
      u[r][1] = _mm256_add_ps(o0, e2);
      u[r][2] = _mm256_sub_ps(e2, o0);
      u[r][3] = _mm256_sub_ps(o0, o2);
    } else {
      u[r][0] = _mm_sub_ps(e0, e2);
      u[r][1] = _mm_add_ps(o0, e2);
      u[r][2] = _mm_sub_ps(e2, o0);
      u[r][3] = _mm_sub_ps(o0, o2);
    }
  }
  for (int j = 0; j < 4; ++j) {
    if constexpr (kW == 8) {
      _mm256_storeu_ps(v + (0 + j) * xs, _mm256_sub_ps(u[0][j], u[2][j]));
      _mm256_storeu_ps(v + (4 + j) * xs, _mm256_add_ps(u[1][j], u[2][j]));
      _mm256_storeu_ps(v + (8 + j) * xs, _mm256_sub_ps(u[2][j], u[1][j]));
      _mm256_storeu_ps(v + (12 + j) * xs, _mm256_sub_ps(u[1][j], u[3][j]));
    } else if (n == 4) {
      _mm_storeu_ps(v + (0 + j) * xs, _mm_sub_ps(u[0][j], u[2][j]));
      _mm_storeu_ps(v + (4 + j) * xs, _mm_add_ps(u[1][j], u[2][j]));
      _mm_storeu_ps(v + (8 + j) * xs, _mm_sub_ps(u[2][j], u[1][j]));
      _mm_storeu_ps(v + (12 + j) * xs, _mm_sub_ps(u[1][j], u[3][j]));
    } else {  // V past the run belongs to other runs: store the first n lanes only
      const __m128i m = _mm256_castsi256_si128(columns_in(0, n));
      _mm_maskstore_ps(v + (0 + j) * xs, m, _mm_sub_ps(u[0][j], u[2][j]));
      _mm_maskstore_ps(v + (4 + j) * xs, m, _mm_add_ps(u[1][j], u[2][j]));
      _mm_maskstore_ps(v + (8 + j) * xs, m, _mm_sub_ps(u[2][j], u[1][j]));
      _mm_maskstore_ps(v + (12 + j) * xs, m, _mm_sub_ps(u[1][j], u[3][j]));
    }
  }
}

}  // namespace

void f32_wino2x2_3x3_avx2_input(const F32WinoInputParams& p) {
  assert(p.n >= 0 && p.channels >= 0 && p.in_w < (int64_t{1} << 30));
  const int64_t xs = p.v_xi_stride;
  for (int64_t ch = 0; ch < p.channels; ++ch) {
    const float* xc = p.x + ch * p.plane;
    const float* rows[4];
    for (int r = 0; r < 4; ++r) {
      const int64_t ih = p.row0 + r;
      rows[r] = ih >= 0 && ih < p.in_h ? xc + ih * p.ld : nullptr;
    }
    float* vc = p.v + ch * p.v_c_stride;
    int64_t t = 0;
    // A group reads columns c .. c + 2 * width + 1, inside the plane or not.
    for (; t + 8 <= p.n; t += 8) {
      const int64_t c = p.col0 + 2 * t;
      if (c >= 0 && c + 18 <= p.in_w) input_group<8, false>(rows, c, p.in_w, vc + t, xs);
      else input_group<8, true>(rows, c, p.in_w, vc + t, xs);
    }
    for (; t < p.n; t += 4) {  // the last 1-7 tiles, 4 at a time in 128-bit vectors
      const int64_t c = p.col0 + 2 * t, n = std::min<int64_t>(4, p.n - t);
      // Columns read: c .. c + 9 (with n < 4, those of the missing tiles read but unused).
      if (c >= 0 && c + 10 <= p.in_w) input_group<4, false>(rows, c, p.in_w, vc + t, xs, n);
      else input_group<4, true>(rows, c, p.in_w, vc + t, xs, n);
    }
  }
}

void f32_wino2x2_3x3_avx2_output(const F32WinoOutputParams& p) {
  assert(p.rows >= 1 && p.rows <= 2 && p.cols <= 2 * p.n && p.cols >= 2 * p.n - 1);
  const __m256 bias = _mm256_set1_ps(p.bias);
  const __m256 alo = _mm256_set1_ps(p.act_lo), ahi = _mm256_set1_ps(p.act_hi);
  const __m256 plo = _mm256_set1_ps(p.post_lo), phi = _mm256_set1_ps(p.post_hi);
  for (int64_t t = 0; t < p.n; t += 8) {
    const __m256i in_mask = first_lanes(p.n - t);
    const bool full_in = p.n - t >= 8;
    __m256 m[16];
    for (int xi = 0; xi < 16; ++xi) {
      const float* src = p.m + xi * p.m_xi_stride + t;
      m[xi] = full_in ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, in_mask);
    }
    __m256 s[4][2];
    for (int i = 0; i < 4; ++i) {
      s[i][0] = _mm256_add_ps(_mm256_add_ps(m[4 * i], m[4 * i + 1]), m[4 * i + 2]);
      s[i][1] = _mm256_sub_ps(_mm256_sub_ps(m[4 * i + 1], m[4 * i + 2]), m[4 * i + 3]);
    }
    __m256 y[2][2];
    for (int j = 0; j < 2; ++j) {
      y[0][j] = _mm256_add_ps(_mm256_add_ps(s[0][j], s[1][j]), s[2][j]);
      y[1][j] = _mm256_sub_ps(_mm256_sub_ps(s[1][j], s[2][j]), s[3][j]);
    }
    const int64_t cols = std::min<int64_t>(16, p.cols - 2 * t);  // valid columns of the 16
    const __m256i mask0 = first_lanes(cols), mask1 = first_lanes(cols - 8);
    for (int r = 0; r < p.rows; ++r) {
      // Full groups hold tiles 0 1 4 5 | 2 3 6 7: interleaving the two columns gives tiles 0-3
      // and 4-7 in order. A partial group is in natural order and needs a lane permute.
      const __m256 lo = _mm256_unpacklo_ps(y[r][0], y[r][1]);
      const __m256 hi = _mm256_unpackhi_ps(y[r][0], y[r][1]);
      __m256 out[2] = {lo, hi};
      if (!full_in) {
        out[0] = _mm256_permute2f128_ps(lo, hi, 0x20);
        out[1] = _mm256_permute2f128_ps(lo, hi, 0x31);
      }
      const int64_t at = r * p.ldy + 2 * t;
      for (int h = 0; h < 2; ++h) {
        if (8 * h >= cols) break;
        const bool full = cols >= 8 * (h + 1);
        const __m256i mask = h == 0 ? mask0 : mask1;
        __m256 v = _mm256_add_ps(out[h], bias);
        if (p.act_clamp) v = clamp(v, alo, ahi);
        if (p.residual) {
          const float* res = p.residual + at + 8 * h;
          v = _mm256_add_ps(v, full ? _mm256_loadu_ps(res) : _mm256_maskload_ps(res, mask));
        }
        if (p.post_clamp) v = clamp(v, plo, phi);
        if (full) _mm256_storeu_ps(p.y + at + 8 * h, v);
        else _mm256_maskstore_ps(p.y + at + 8 * h, mask, v);
      }
    }
  }
}

}  // namespace sliver
