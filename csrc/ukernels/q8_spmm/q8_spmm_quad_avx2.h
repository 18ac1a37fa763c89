// The kr = 4 ("quad") INT8 sparse kernels on AVX2 and their uint8 panel packer; included by
// q8_spmm_avx2.cc only.
//
// Two consecutive pairs of a row, (k1, k2) and (k3, k4), take one step: the four panel rows are
// raw bytes u (activation, s8 ones with the sign bit flipped), interleaved by two rounds of
// unpacks into (u1, u2, u3, u4) per 32-bit lane, multiplied by the broadcast weight quad with
// vpmaddubsw (u8 x s8 -> the two s16 pair sums) and widened by vpmaddwd against ones. The packer
// made every pair fast-safe (qgemm.h: no saturation for any u in [0, 255]), so the s16 sums and
// the int32 results are exact; the sum is of u * w', and the driver's bias carries the
// -u_zero_point * sum(w') that re-centres it. Against the kr = 1 kernels (int16 panel, one
// vpmaddwd per pair): half the panel bytes and loads, 18 instead of 28 vector operations per four
// nonzeros. Measured on Zen 3 with every row in L1/L2 (a scratch copy of both loops): 16 vs 11
// multiply-adds per cycle.
//
// Panel (sparse.h): row k at x + k * NT bytes. NT = 32: the kernel's unpacks work within
// 128-bit halves, so byte groups of 4 lanes are stored in the order 0 2 4 6 1 3 5 7, which
// comes out of them as lanes 0-31 in order; NT = 16 and 8 (xmm) keep natural order.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "sliver/sparse.h"
#include "ukernels/store_lanes_avx2.h"
#include "ukernels/u8_transpose16_avx2.h"

namespace sliver {
namespace q4avx2 {

#define SLIVER_Q4_INLINE inline __attribute__((always_inline))
#define SLIVER_Q4_LAMBDA __attribute__((always_inline))

// The quad's four rows, from four byte steps (pair semantics of sparse.h: k1 = base + s0,
// k2 = base + s1, base = k2, k3 = base + s2, k4 = base + s3, base = k4).
template <int NT>
SLIVER_Q4_INLINE void quad_rows(const uint8_t* kidx, int64_t e, const uint8_t*& base,
                                const uint8_t* r[4]) {
  uint32_t s;
  std::memcpy(&s, kidx + 2 * e, sizeof(s));
  r[0] = base + static_cast<int64_t>(s & 0xff) * NT;
  r[1] = base + static_cast<int64_t>((s >> 8) & 0xff) * NT;
  r[2] = r[1] + static_cast<int64_t>((s >> 16) & 0xff) * NT;
  r[3] = r[1] + static_cast<int64_t>(s >> 24) * NT;
  base = r[3];
}

SLIVER_Q4_INLINE __m256i quad_weights(const int8_t* w, int64_t e) {
  int32_t v;
  std::memcpy(&v, w + 2 * e, sizeof(v));
  return _mm256_set1_epi32(v);
}

// Accumulators of one row: lanes 8i..8i+7 in v[i].
template <int NT>
struct QuadAcc {
  static constexpr int A = NT / 8;
  __m256i v[A];
};

template <int NT>
SLIVER_Q4_INLINE void quad_step(const uint8_t* const r[4], __m256i w4, QuadAcc<NT>& acc) {
  const __m256i ones = _mm256_set1_epi16(1);
  auto dot = [&](__m256i u) SLIVER_Q4_LAMBDA {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, w4), ones);
  };
  if constexpr (NT == 32) {
    __m256i x[4];
    for (int i = 0; i < 4; ++i) x[i] = _mm256_load_si256(reinterpret_cast<const __m256i*>(r[i]));
    const __m256i a = _mm256_unpacklo_epi8(x[0], x[1]), b = _mm256_unpackhi_epi8(x[0], x[1]);
    const __m256i c = _mm256_unpacklo_epi8(x[2], x[3]), d = _mm256_unpackhi_epi8(x[2], x[3]);
    acc.v[0] = _mm256_add_epi32(acc.v[0], dot(_mm256_unpacklo_epi16(a, c)));
    acc.v[1] = _mm256_add_epi32(acc.v[1], dot(_mm256_unpackhi_epi16(a, c)));
    acc.v[2] = _mm256_add_epi32(acc.v[2], dot(_mm256_unpacklo_epi16(b, d)));
    acc.v[3] = _mm256_add_epi32(acc.v[3], dot(_mm256_unpackhi_epi16(b, d)));
  } else if constexpr (NT == 16) {
    __m128i x[4];
    for (int i = 0; i < 4; ++i) x[i] = _mm_load_si128(reinterpret_cast<const __m128i*>(r[i]));
    const __m128i a = _mm_unpacklo_epi8(x[0], x[1]), b = _mm_unpackhi_epi8(x[0], x[1]);
    const __m128i c = _mm_unpacklo_epi8(x[2], x[3]), d = _mm_unpackhi_epi8(x[2], x[3]);
    // Lanes 0-7 in one ymm, 8-15 in another: two 256-bit dot products instead of four.
    const __m256i lo = _mm256_set_m128i(_mm_unpackhi_epi16(a, c), _mm_unpacklo_epi16(a, c));
    const __m256i hi = _mm256_set_m128i(_mm_unpackhi_epi16(b, d), _mm_unpacklo_epi16(b, d));
    acc.v[0] = _mm256_add_epi32(acc.v[0], dot(lo));
    acc.v[1] = _mm256_add_epi32(acc.v[1], dot(hi));
  } else {
    static_assert(NT == 8, "quad tiles are 32, 16 or 8 lanes");
    __m128i x[4];
    for (int i = 0; i < 4; ++i) x[i] = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r[i]));
    const __m128i a = _mm_unpacklo_epi8(x[0], x[1]), c = _mm_unpacklo_epi8(x[2], x[3]);
    const __m256i v = _mm256_set_m128i(_mm_unpackhi_epi16(a, c), _mm_unpacklo_epi16(a, c));
    acc.v[0] = _mm256_add_epi32(acc.v[0], dot(v));
  }
}

// Row blocks of R = 1, NT lanes; p.count[b] is even (the packer pads each run to whole quads).
// There is no vector form: one column ran slower in it (scalar sums) than in an 8-lane tile.
template <int NT>
void quad_tile(const Q8SpmmArgs& p) {
  const uint8_t* __restrict kidx = p.kidx;
  const int8_t* __restrict w = static_cast<const int8_t*>(p.w);
  const uint8_t* x = reinterpret_cast<const uint8_t*>(p.x);
  int64_t e = p.first;
  for (int64_t b = 0; b < p.nblocks; ++b) {
    QuadAcc<NT> acc;
    for (int i = 0; i < QuadAcc<NT>::A; ++i) acc.v[i] = _mm256_setzero_si256();
    const int64_t e1 = e + p.count[b];
    const uint8_t* base = x;
    for (; e < e1; e += 2) {
      const uint8_t* r[4];
      quad_rows<NT>(kidx, e, base, r);
      quad_step<NT>(r, quad_weights(w, e), acc);
    }
    if (b >= p.rows) continue;
    int32_t* yr = p.y + b * p.ldy;
    for (int i = 0; i < QuadAcc<NT>::A; ++i) {
      __m256i s = acc.v[i];
      if (p.acc_in)
        s = _mm256_add_epi32(
            s, _mm256_load_si256(reinterpret_cast<const __m256i*>(p.acc_in + b * NT + 8 * i)));
      const int64_t n = std::min<int64_t>(8, p.nt - 8 * i);
      if (n == 8) _mm256_storeu_si256(reinterpret_cast<__m256i*>(yr + 8 * i), s);
      else if (n > 0) avx2::store_lanes(yr + 8 * i, s, n);
    }
  }
}

// ---- the uint8 panel ----

// Byte groups of 4 lanes in the NT = 32 kernel's order (see the top).
SLIVER_Q4_INLINE __m256i quad_lane_order(__m256i v) {
  return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
}

// Source element (k, j) at src[k * k_step + j * lane_step]; lanes past nt get the bytes of the
// zero point (the driver's re-centring then makes them 0; they are dropped anyway).
inline void pack_quad_panel(int NT, int64_t kc, int64_t nt, const uint8_t* src, int64_t k_step,
                            int64_t lane_step, bool is_signed, int32_t zp, uint8_t* dst) {
  const uint8_t flip = is_signed ? 0x80 : 0;
  const uint8_t pad = static_cast<uint8_t>(zp);  // flipped with the rest
  const __m256i vflip = _mm256_set1_epi8(static_cast<char>(flip));
  auto store_row = [&](__m256i v, uint8_t* d) SLIVER_Q4_LAMBDA {
    v = _mm256_xor_si256(v, vflip);
    if (NT == 32) _mm256_store_si256(reinterpret_cast<__m256i*>(d), quad_lane_order(v));
    else if (NT == 16) _mm_store_si128(reinterpret_cast<__m128i*>(d), _mm256_castsi256_si128(v));
    else _mm_storel_epi64(reinterpret_cast<__m128i*>(d), _mm256_castsi256_si128(v));
  };
  if (k_step == 1 && lane_step != 1 && NT >= 8) {
    // Lanes are rows of X (weights on the right): 16 k's of 16 lanes per byte transpose.
    const __m128i vpad = _mm_set1_epi8(static_cast<char>(pad));
    for (int64_t k0 = 0; k0 < kc; k0 += 16) {
      const int kn = static_cast<int>(std::min<int64_t>(16, kc - k0));
      __m128i t[2][16];
      for (int h = 0; h < NT / 16 + (NT == 8); ++h) {
        for (int j = 0; j < 16; ++j) {
          const int64_t lane = 16 * h + j;
          const uint8_t* s = src + k0 + lane * lane_step;
          if (lane >= nt) {
            t[h][j] = vpad;
          } else if (kn == 16) {
            t[h][j] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
          } else {  // the K tail: never read past the row
            alignas(16) uint8_t b[16];
            _mm_store_si128(reinterpret_cast<__m128i*>(b), vpad);
            std::memcpy(b, s, static_cast<size_t>(kn));
            t[h][j] = _mm_load_si128(reinterpret_cast<const __m128i*>(b));
          }
        }
        avx2::transpose16x16(t[h]);
      }
      for (int k = 0; k < kn; ++k) {
        const __m256i v = NT == 32 ? _mm256_set_m128i(t[1][k], t[0][k])
                                   : _mm256_castsi128_si256(t[0][k]);
        store_row(v, dst + (k0 + k) * NT);
      }
    }
    return;
  }
  alignas(32) uint8_t row[32];
  for (int64_t k = 0; k < kc; ++k) {
    const uint8_t* s = src + k * k_step;
    if (!(lane_step == 1 && nt == NT)) {
      for (int64_t j = 0; j < NT; ++j) row[j] = j < nt ? s[j * lane_step] : pad;
      s = row;
    }
    const __m256i v =
        NT == 32 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s))
        : NT == 16
            ? _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s)))
            : _mm256_castsi128_si256(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s)));
    store_row(v, dst + k * NT);
  }
}

#undef SLIVER_Q4_INLINE
#undef SLIVER_Q4_LAMBDA

}  // namespace q4avx2
}  // namespace sliver
