// q8_spmm_<NT>x<R>_avx2: exact INT8 sparse-weight micro-kernels (sparse.h), plus the int16 panel
// packers and the per-channel requantizing epilogue the sparse driver uses on AVX2.
//
// A pair of a row block's nonzeros (inputs k1, k2) costs: its two input steps (one add on the
// running base), two panel rows loaded, interleaved by vpunpck{l,h}wd into (x[k1], x[k2]) pairs
// per lane, and for each of the R rows one broadcast of the weight pair (w'1, w'2) (int8
// weights: plus a byte shuffle and a shift that sign-extend it) and one vpmaddwd + vpaddd per 8
// lanes. Measured against 16-bit weights and indices (Zen 3, 10-20% density, 64-3072 rows):
// unblocked rows (32 lanes) 2-5% more time per pair where everything sits in L1/L2, for half
// the bytes; 4x1 blocks (16 lanes, 8 vpmaddwd a pair, the port they share with the decode
// saturated) 18%, so blocks keep int16 weights (sparse_pack.cc). vpmaddwd never saturates here
// (|pair sum| <= 2 * 255 * 255), so the int32 sums are exact. The unpacks work within 128-bit
// halves; the packer's lane order (0-3 8-11 4-7 12-15 per 16) makes the low unpack hold lanes
// 0-7 and the high one 8-15, so no shuffle is needed at the end.
#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <utility>

#include "sliver/sparse.h"
#include "ukernels/unroll.h"
#include "ukernels/q8_gemm/q8_epilogue_avx2.h"
#include "ukernels/q8_spmm/q8_spmm_quad_avx2.h"
#include "ukernels/u8_transpose16_avx2.h"

namespace sliver {
namespace {

using q8avx2::opaque;  // the GEMM epilogue's helpers: same stores, same operation order
using q8avx2::store_codes;
using q8avx2::store_lanes;

// The weight pair (w'1, w'2) at w, as int16 pairs in every 32-bit lane. An int8 pair is
// broadcast as 4 bytes (2 past it are readable), its bytes moved to the high halves of the two
// words and shifted back with their signs: two cheap ops beside the unpacks and vpmaddwd.
template <class W>
SLIVER_INLINE __m256i bcast_pair(const W* w) {
  int32_t v;
  std::memcpy(&v, w, sizeof(v));
  if constexpr (sizeof(W) == 2) {
    return _mm256_set1_epi32(v);
  } else {
    const __m256i hi = _mm256_setr_epi8(
        -128, 0, -128, 1, -128, 0, -128, 1, -128, 0, -128, 1, -128, 0, -128, 1,
        -128, 0, -128, 1, -128, 0, -128, 1, -128, 0, -128, 1, -128, 0, -128, 1);
    return _mm256_srai_epi16(_mm256_shuffle_epi8(_mm256_set1_epi32(v), hi), 8);
  }
}

template <int KR, int64_t kRowBytes>
SLIVER_INLINE void pair_rows(const uint8_t* kidx, int64_t e, const char*& base, const char*& r1,
                             const char*& r2) {
  if constexpr (KR == 2) {
    r1 = base + static_cast<int64_t>(kidx[e]) * (2 * kRowBytes);
    r2 = r1 + kRowBytes;
    base = r1;
  } else {
    r1 = base + static_cast<int64_t>(kidx[2 * e]) * kRowBytes;
    r2 = base + static_cast<int64_t>(kidx[2 * e + 1]) * kRowBytes;
    base = r2;
  }
}

template <int NT, int R, int KR, class W>
void spmm_tile(const Q8SpmmArgs& p) {
  static_assert(NT == 8 || NT % 16 == 0, "8 lanes, or whole 16-lane vectors");
  constexpr int A = NT / 8;  // int32 accumulators per row
  static_assert(R * A <= 12, "accumulators fit the register file");
  constexpr int64_t kRowBytes = NT * sizeof(int16_t);
  const uint8_t* __restrict kidx = p.kidx;
  const W* __restrict w = static_cast<const W*>(p.w);
  const char* x = reinterpret_cast<const char*>(p.x);

  int64_t e0 = p.first;
  for (int64_t b = 0; b < p.nblocks; ++b) {
    const int64_t row0 = b * R;
    __m256i acc[R][A];
    unroll<R>([&](auto r) SLIVER_ALWAYS {
      unroll<A>([&](auto a) SLIVER_ALWAYS {
        acc[r][a] = p.acc_in ? _mm256_load_si256(reinterpret_cast<const __m256i*>(
                                   p.acc_in + (row0 + r) * NT + 8 * a))
                             : _mm256_setzero_si256();
      });
    });
    const int64_t e1 = e0 + p.count[b];
    const char* base = x;
    for (int64_t e = e0; e < e1; ++e) {
      const char *r1, *r2;
      pair_rows<KR, kRowBytes>(kidx, e, base, r1, r2);
      const int16_t* x1 = reinterpret_cast<const int16_t*>(r1);
      const int16_t* x2 = reinterpret_cast<const int16_t*>(r2);
      __m256i pv[A];  // (x[k1], x[k2]) pairs, 8 lanes each, in lane order
      if constexpr (KR == 2) {
        // Pre-interleaved: rows k1, k1 + 1 already sit as pairs at x + k1 * NT.
        unroll<A>([&](auto a) SLIVER_ALWAYS {
          pv[a] = _mm256_load_si256(reinterpret_cast<const __m256i*>(x1 + 16 * a));
        });
      } else if constexpr (NT == 8) {
        const __m128i a = _mm_load_si128(reinterpret_cast<const __m128i*>(x1));
        const __m128i c = _mm_load_si128(reinterpret_cast<const __m128i*>(x2));
        pv[0] = _mm256_set_m128i(_mm_unpackhi_epi16(a, c), _mm_unpacklo_epi16(a, c));
      } else {
        unroll<A / 2>([&](auto v) SLIVER_ALWAYS {
          const __m256i a = _mm256_load_si256(reinterpret_cast<const __m256i*>(x1 + 16 * v));
          const __m256i c = _mm256_load_si256(reinterpret_cast<const __m256i*>(x2 + 16 * v));
          pv[2 * v] = _mm256_unpacklo_epi16(a, c);
          pv[2 * v + 1] = _mm256_unpackhi_epi16(a, c);
        });
      }
      unroll<R>([&](auto r) SLIVER_ALWAYS {
        const __m256i wp = bcast_pair(w + (e * R + r) * 2);
        unroll<A>([&](auto a) SLIVER_ALWAYS {
          acc[r][a] = _mm256_add_epi32(acc[r][a], _mm256_madd_epi16(pv[a], wp));
        });
      });
    }
    e0 = e1;
    unroll<R>([&](auto r) SLIVER_ALWAYS {
      if (row0 + r >= p.rows) return;
      int32_t* yr = p.y + (row0 + r) * p.ldy;
      unroll<A>([&](auto a) SLIVER_ALWAYS {
        const int64_t n = std::min<int64_t>(8, p.nt - 8 * a);
        if (n > 0) store_lanes(yr + 8 * a, acc[r][a], n);
      });
    });
  }
}

// R weight pairs of one pair entry as int16 (8 bytes for R = 4, 16 for R = 8 when int8).
template <int R, class W>
SLIVER_INLINE __m256i weight_pairs(const W* w) {
  if constexpr (sizeof(W) == 2) {
    if constexpr (R == 8) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
    return _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
  } else if constexpr (R == 8) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
  } else {
    return _mm256_castsi128_si256(
        _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w))));
  }
}

// The vector form: one activation column (x[k] at x + k); R rows share each pair's activations.
template <int R, int KR, class W>
void spmv_rows(const Q8SpmmArgs& p) {
  const uint8_t* __restrict kidx = p.kidx;
  const W* __restrict w = static_cast<const W*>(p.w);
  const char* x = reinterpret_cast<const char*>(p.x);
  int64_t e = p.first;
  for (int64_t b = 0; b < p.nblocks; ++b) {
    const int64_t e1 = e + p.count[b];
    const char* base = x;
    alignas(32) int32_t sums[8];
    auto xs = [&](int64_t i, int32_t* a, int32_t* c) SLIVER_ALWAYS {
      const char *r1, *r2;
      pair_rows<KR, 2>(kidx, i, base, r1, r2);
      *a = *reinterpret_cast<const int16_t*>(r1);
      *c = *reinterpret_cast<const int16_t*>(r2);
    };
    if constexpr (R == 1) {
      // Scalar, two sums against latency; uint32 wraps like the int32 lanes elsewhere.
      uint32_t s[2] = {0, 0};
      auto step = [&](int64_t i, int j) SLIVER_ALWAYS {
        int32_t a, c;
        xs(i, &a, &c);
        s[j] += static_cast<uint32_t>(int32_t{w[2 * i]} * a + int32_t{w[2 * i + 1]} * c);
      };
      for (; e + 2 <= e1; e += 2) {
        step(e, 0);
        step(e + 1, 1);
      }
      if (e < e1) step(e++, 0);
      sums[0] = static_cast<int32_t>(s[0] + s[1]);
    } else {
      // R = 8: one ymm of 8 weight pairs per pair entry; R = 4: one xmm.
      __m256i acc8 = _mm256_setzero_si256();
      __m128i acc4 = _mm_setzero_si128();
      for (; e < e1; ++e) {
        int32_t a, c;
        xs(e, &a, &c);
        const uint32_t pair = static_cast<uint16_t>(a) | (static_cast<uint32_t>(c) << 16);
        const __m256i wv = weight_pairs<R>(w + e * 2 * R);
        if constexpr (R == 8) {
          acc8 = _mm256_add_epi32(
              acc8, _mm256_madd_epi16(_mm256_set1_epi32(static_cast<int32_t>(pair)), wv));
        } else {
          acc4 = _mm_add_epi32(acc4, _mm_madd_epi16(_mm_set1_epi32(static_cast<int32_t>(pair)),
                                                    _mm256_castsi256_si128(wv)));
        }
      }
      const __m256i acc = R == 8 ? acc8 : _mm256_set_m128i(_mm_setzero_si128(), acc4);
      _mm256_store_si256(reinterpret_cast<__m256i*>(sums), acc);
    }
    for (int r = 0; r < R; ++r) {
      const int64_t row = b * R + r;
      if (row >= p.rows) break;
      const uint32_t base_sum = p.acc_in ? static_cast<uint32_t>(p.acc_in[row]) : 0u;
      p.y[row * p.ldy] = static_cast<int32_t>(base_sum + static_cast<uint32_t>(sums[r]));
    }
  }
}

// Two weight pairs, (w'1, w'2) of pair e at w and pair e + 1's after it, as int16 pairs in the
// four 32-bit lanes of the low and of the high 128 bits.
template <class W>
SLIVER_INLINE __m256i bcast_two_pairs(const W* w) {
  if constexpr (sizeof(W) == 2) {
    const __m256i v = _mm256_castsi128_si256(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w)));
    return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
  } else {
    int32_t v;
    std::memcpy(&v, w, sizeof(v));
    const __m256i hi = _mm256_setr_epi8(
        -128, 0, -128, 1, -128, 0, -128, 1, -128, 0, -128, 1, -128, 0, -128, 1,
        -128, 2, -128, 3, -128, 2, -128, 3, -128, 2, -128, 3, -128, 2, -128, 3);
    return _mm256_srai_epi16(_mm256_shuffle_epi8(_mm256_set1_epi32(v), hi), 8);
  }
}

// The narrow form, at most 4 activation columns (a small batch on the right, R = 1): a pair's
// (x[k1], x[k2]) lane pairs fill only 128 bits, so two consecutive pairs share one 256-bit
// vpmaddwd (the first in the low half, the second in the high half, halves added at the end):
// half the multiply-adds, unpacks and weight decodes of an 8-lane tile per pair.
template <int KR, class W>
void spmm_narrow(const Q8SpmmArgs& p) {
  constexpr int64_t kRowBytes = 4 * sizeof(int16_t);
  const uint8_t* __restrict kidx = p.kidx;
  const W* __restrict w = static_cast<const W*>(p.w);
  const char* x = reinterpret_cast<const char*>(p.x);
  auto lanes = [](const char* r1, const char* r2) SLIVER_ALWAYS {
    if constexpr (KR == 2) return _mm_loadu_si128(reinterpret_cast<const __m128i*>(r1));
    return _mm_unpacklo_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(r1)),
                              _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r2)));
  };
  int64_t e = p.first;
  for (int64_t b = 0; b < p.nblocks; ++b) {
    const int64_t e1 = e + p.count[b];
    const char* base = x;
    __m256i acc = _mm256_setzero_si256();
    for (; e + 2 <= e1; e += 2) {
      const char *r1, *r2, *r3, *r4;
      pair_rows<KR, kRowBytes>(kidx, e, base, r1, r2);
      pair_rows<KR, kRowBytes>(kidx, e + 1, base, r3, r4);
      const __m256i pv = _mm256_set_m128i(lanes(r3, r4), lanes(r1, r2));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pv, bcast_two_pairs(w + 2 * e)));
    }
    // An odd last pair: the high half multiplies zeros. (A branchless masked pair measured
    // slower than this branch's mispredictions.)
    if (e < e1) {
      const char *r1, *r2;
      pair_rows<KR, kRowBytes>(kidx, e, base, r1, r2);
      const __m256i pv = _mm256_set_m128i(_mm_setzero_si128(), lanes(r1, r2));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pv, bcast_pair(w + 2 * e)));
      ++e;
    }
    __m128i sum = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    if (b >= p.rows) continue;
    if (p.acc_in)
      sum = _mm_add_epi32(sum, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p.acc_in + b * 4)));
    int32_t* yr = p.y + b * p.ldy;
    if (p.nt == 4) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(yr), sum);
    } else {
      alignas(16) int32_t tmp[4];
      _mm_store_si128(reinterpret_cast<__m128i*>(tmp), sum);
      std::memcpy(yr, tmp, static_cast<size_t>(p.nt) * sizeof(int32_t));
    }
  }
}

template <int NT, int R, int KR, class W>
void run_typed(const Q8SpmmArgs& p) {
  if constexpr (NT == 1) {
    spmv_rows<R, KR, W>(p);
  } else if constexpr (NT == 4) {
    static_assert(R == 1, "the narrow form is for unblocked rows");
    spmm_narrow<KR, W>(p);
  } else {
    spmm_tile<NT, R, KR, W>(p);
  }
}

template <int NT, int R, int KR>
void run(const Q8SpmmArgs& p) {
  assert(p.nt >= 1 && p.nt <= NT && p.rows <= p.nblocks * R);
  assert(NT == 1 || (KR == 4 && NT == 8) ||
         (reinterpret_cast<uintptr_t>(p.x) & (KR == 2 ? 31 : 15)) == 0);
  if constexpr (KR == 4) {
    static_assert(R == 1, "quads are for unblocked rows");
    assert(!p.wide);
    q4avx2::quad_tile<NT>(p);
  } else if (p.wide) {
    run_typed<NT, R, KR, int16_t>(p);
  } else {
    run_typed<NT, R, KR, int8_t>(p);
  }
}

// ---- panels: int16 x - zero_point (layouts in sparse.h) ----

int16_t centred(uint8_t v, bool is_signed, int32_t zp) {
  return static_cast<int16_t>((is_signed ? int32_t{static_cast<int8_t>(v)} : int32_t{v}) - zp);
}

// One row of NT lanes in natural order from nt source bytes at stride `step`; zeros past nt.
SLIVER_INLINE void natural_row(int NT, int64_t nt, const uint8_t* s, int64_t step, bool is_signed,
                               int32_t zp, __m256i vzp, int16_t* d) {
  if (NT < 16) {
    for (int64_t j = 0; j < NT; ++j) d[j] = j < nt ? centred(s[j * step], is_signed, zp) : 0;
    return;
  }
  for (int64_t j0 = 0; j0 < NT; j0 += 16) {
    alignas(16) uint8_t tmp[16];
    const uint8_t* src = s + j0;
    if (step != 1 || j0 + 16 > nt) {
      // Padding lanes get the zero point's byte, so they centre to 0.
      const uint8_t pad = static_cast<uint8_t>(zp);
      for (int64_t j = 0; j < 16; ++j) tmp[j] = j0 + j < nt ? s[(j0 + j) * step] : pad;
      src = tmp;
    }
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
    const __m256i v = is_signed ? _mm256_cvtepi8_epi16(bytes) : _mm256_cvtepu8_epi16(bytes);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + j0), _mm256_sub_epi16(v, vzp));
  }
}

// The NT lanes of rows k and k + 1 (natural order) interleaved into the kr = 2 layout at d.
SLIVER_INLINE void interleave_pair(int NT, const int16_t* r0, const int16_t* r1, int16_t* d) {
  if (NT == 4) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d),
                     _mm_unpacklo_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(r0)),
                                        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r1))));
    return;
  }
  for (int j0 = 0; j0 < NT; j0 += 8) {
    const __m128i a = _mm_load_si128(reinterpret_cast<const __m128i*>(r0 + j0));
    const __m128i b = _mm_load_si128(reinterpret_cast<const __m128i*>(r1 + j0));
    _mm_store_si128(reinterpret_cast<__m128i*>(d + 2 * j0), _mm_unpacklo_epi16(a, b));
    _mm_store_si128(reinterpret_cast<__m128i*>(d + 2 * j0 + 8), _mm_unpackhi_epi16(a, b));
  }
}

// Swapping the middle 64-bit quarters of every 16 lanes gives the lane order the kr = 1
// kernels' unpacks undo (sparse.h).
SLIVER_INLINE void kernel_lane_order(int NT, int16_t* d) {
  for (int j0 = 0; NT >= 16 && j0 < NT; j0 += 16) {
    __m256i* v = reinterpret_cast<__m256i*>(d + j0);
    _mm256_storeu_si256(v, _mm256_permute4x64_epi64(_mm256_loadu_si256(v), 0xd8));
  }
}

// Natural-order rows k = 0..15 (row k at d + k * NT) of a tile whose lanes are `lane_step`
// bytes apart with kn <= 16 consecutive k's readable in each (weights on the right: X rows are
// lanes); rows past kn centre to 0. A strided byte gather costs several cycles an element;
// this is a fraction of one.
void transposed_rows16(int NT, int64_t nt, int kn, const uint8_t* src, int64_t lane_step,
                       bool is_signed, int32_t zp, __m256i vzp, bool lane_order, int16_t* d) {
  const __m128i pad = _mm_set1_epi8(static_cast<char>(zp));  // centres to 0
  for (int j0 = 0; j0 < NT; j0 += 16) {
    __m128i r[16];
    for (int j = 0; j < 16; ++j) {
      const uint8_t* s = src + (j0 + j) * lane_step;
      if (j0 + j >= nt) {
        r[j] = pad;
      } else if (kn == 16) {
        r[j] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
      } else {  // the K tail: never read past the row
        alignas(16) uint8_t t[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(t), pad);
        std::memcpy(t, s, static_cast<size_t>(kn));
        r[j] = _mm_load_si128(reinterpret_cast<const __m128i*>(t));
      }
    }
    avx2::transpose16x16(r);
    for (int k = 0; k < 16; ++k) {
      __m256i v = _mm256_sub_epi16(
          is_signed ? _mm256_cvtepi8_epi16(r[k]) : _mm256_cvtepu8_epi16(r[k]), vzp);
      if (NT >= 16) {
        if (lane_order) v = _mm256_permute4x64_epi64(v, 0xd8);  // kernel_lane_order's, fused
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + k * NT + j0), v);
      } else {  // NT = 8: the low 8 lanes
        _mm_storeu_si128(reinterpret_cast<__m128i*>(d + k * NT), _mm256_castsi256_si128(v));
      }
    }
  }
}

// kr = 8 (sparse.h): rows 4g..4g+3 as the bytes of each lane's word, raw bytes u (s8 flipped);
// rows past kc and lanes past nt hold the zero point's byte. Source as for pack().
void pack_groups(int NT, int64_t kc, int64_t nt, const uint8_t* src, int64_t k_step,
                 int64_t lane_step, bool is_signed, int32_t zp, uint8_t* dst) {
  const uint8_t pad = static_cast<uint8_t>(zp);
  const int64_t groups = (kc + 3) / 4;
  auto byte = [&](int64_t k, int64_t j) {
    return j < nt && k < kc ? src[k * k_step + j * lane_step] : pad;
  };
  if (k_step == 1 && lane_step != 1) {
    // Lanes are rows of X (weights on the right): a lane's group is 4 adjacent bytes.
    const uint32_t flip = is_signed ? 0x80808080u : 0;
    for (int64_t j = 0; j < NT; ++j) {
      const uint8_t* s = src + j * lane_step;
      for (int64_t g = 0; g < groups; ++g) {
        uint32_t v;
        if (j < nt && 4 * g + 4 <= kc) {
          std::memcpy(&v, s + 4 * g, sizeof(v));
        } else {
          const uint8_t b[4] = {byte(4 * g, j), byte(4 * g + 1, j), byte(4 * g + 2, j),
                                byte(4 * g + 3, j)};
          std::memcpy(&v, b, sizeof(v));
        }
        v ^= flip;
        std::memcpy(dst + g * 4 * NT + 4 * j, &v, sizeof(v));
      }
    }
    return;
  }
  const __m128i flip = _mm_set1_epi8(static_cast<char>(is_signed ? 0x80 : 0));
  alignas(32) uint8_t tmp[4][32];
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* r[4];
    for (int i = 0; i < 4; ++i) {
      const int64_t k = 4 * g + i;
      if (k < kc && nt == NT && lane_step == 1) {
        r[i] = src + k * k_step;
        continue;
      }
      for (int64_t j = 0; j < NT; ++j) tmp[i][j] = byte(k, j);
      r[i] = tmp[i];
    }
    uint8_t* d = dst + g * 4 * NT;
    if (NT == 8) {
      auto ld = [&](int i) { return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r[i])); };
      const __m128i a = _mm_unpacklo_epi8(ld(0), ld(1)), c = _mm_unpacklo_epi8(ld(2), ld(3));
      _mm_store_si128(reinterpret_cast<__m128i*>(d), _mm_xor_si128(_mm_unpacklo_epi16(a, c), flip));
      _mm_store_si128(reinterpret_cast<__m128i*>(d + 16),
                      _mm_xor_si128(_mm_unpackhi_epi16(a, c), flip));
      continue;
    }
    for (int j0 = 0; j0 < NT; j0 += 16) {
      auto ld = [&](int i) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(r[i] + j0)); };
      const __m128i x0 = ld(0), x1 = ld(1), x2 = ld(2), x3 = ld(3);
      const __m128i a = _mm_unpacklo_epi8(x0, x1), b = _mm_unpackhi_epi8(x0, x1);
      const __m128i c = _mm_unpacklo_epi8(x2, x3), e = _mm_unpackhi_epi8(x2, x3);
      const __m128i v[4] = {_mm_unpacklo_epi16(a, c), _mm_unpackhi_epi16(a, c),
                            _mm_unpacklo_epi16(b, e), _mm_unpackhi_epi16(b, e)};
      for (int q = 0; q < 4; ++q)
        _mm_store_si128(reinterpret_cast<__m128i*>(d + 4 * j0 + 16 * q), _mm_xor_si128(v[q], flip));
    }
  }
}

// Source row k of the tile starts at src + k * k_step; its lanes are `lane_step` apart.
void pack(int NT, int kr, int64_t kc, int64_t nt, const uint8_t* src, int64_t k_step,
          int64_t lane_step, bool is_signed, int32_t zp, int16_t* dst) {
  if (kr == kQ8AlignedQuads)
    return pack_groups(NT, kc, nt, src, k_step, lane_step, is_signed, zp,
                       reinterpret_cast<uint8_t*>(dst));
  if (kr == 4)
    return q4avx2::pack_quad_panel(NT, kc, nt, src, k_step, lane_step, is_signed, zp,
                                   reinterpret_cast<uint8_t*>(dst));
  const __m256i vzp = _mm256_set1_epi16(static_cast<int16_t>(zp));
  if (k_step == 1 && lane_step != 1 && NT >= 8) {  // lanes are rows of X: transpose 16 k's
    alignas(32) int16_t blk[16 * 32];
    for (int64_t k0 = 0; k0 < kc; k0 += 16) {
      const int kn = static_cast<int>(std::min<int64_t>(16, kc - k0));
      const bool in_place = kr == 1 && kn == 16;
      // Rows for kr = 1 come out in the kernel's lane order; pairs interleave natural rows.
      transposed_rows16(NT, nt, kn, src + k0, lane_step, is_signed, zp, vzp, kr == 1,
                        in_place ? dst + k0 * NT : blk);
      if (in_place) continue;
      for (int k = 0; k < kn; k += kr) {
        int16_t* d = dst + (k0 + k) * NT;
        if (kr == 2) {  // an odd tail pairs its last row with a zero row, as the layout wants
          interleave_pair(NT, blk + k * NT, blk + (k + 1) * NT, d);
          continue;
        }
        std::memcpy(d, blk + k * NT, static_cast<size_t>(NT) * sizeof(int16_t));
      }
    }
    return;
  }
  if (kr == 1 || NT == 1) {
    for (int64_t k = 0; k < kc; ++k) {
      int16_t* d = dst + k * NT;
      natural_row(NT, nt, src + k * k_step, lane_step, is_signed, zp, vzp, d);
      kernel_lane_order(NT, d);
    }
    if (kr == 2 && kc % 2) dst[kc] = 0;  // the vector form's partner of the last row
    return;
  }
  alignas(32) int16_t r0[32], r1[32];
  for (int64_t k = 0; k < kc; k += 2) {
    natural_row(NT, nt, src + k * k_step, lane_step, is_signed, zp, vzp, r0);
    if (k + 1 < kc) natural_row(NT, nt, src + (k + 1) * k_step, lane_step, is_signed, zp, vzp, r1);
    else std::memset(r1, 0, sizeof(r1));
    interleave_pair(NT, r0, r1, dst + k * NT);
  }
}

void pack_rows(int NT, int kr, int64_t kc, int64_t nt, const uint8_t* src, int64_t ld,
               bool is_signed, int32_t zp, int16_t* dst) {
  pack(NT, kr, kc, nt, src, ld, 1, is_signed, zp, dst);
}

void pack_cols(int NT, int kr, int64_t kc, int64_t nt, const uint8_t* src, int64_t ld,
               bool is_signed, int32_t zp, int16_t* dst) {
  pack(NT, kr, kc, nt, src, 1, ld, is_signed, zp, dst);
}

// ---- per-channel epilogue: the same float operation order as requant.h ----

// kKind: 0 int32, 1 requant f64 (onnx_reference), 2 requant f32 (onnxruntime), 3 float32.
// kPerCol: channel parameters vary along j (vector loads) instead of i (broadcasts).
template <int kKind, bool kPerCol>
void epilogue(const Q8ChannelEpilogue& p, const int32_t* acc, int64_t acc_stride, int64_t rows,
              int64_t cols, void* y, int64_t ldy) {
  const __m256d zp_d = _mm256_set1_pd(p.y_zero_point), lo_d = _mm256_set1_pd(p.qmin),
                hi_d = _mm256_set1_pd(p.qmax);
  const __m256 lo_f = _mm256_set1_ps(static_cast<float>(p.qmin - p.y_zero_point));
  const __m256 hi_f = _mm256_set1_ps(static_cast<float>(p.qmax - p.y_zero_point));
  const __m256i zp_i = _mm256_set1_epi32(p.y_zero_point);
  const bool u8 = p.y_type == DType::u8;
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; j += 8) {
      const int64_t cnt = std::min<int64_t>(8, cols - j);
      const int64_t c = kPerCol ? j : i;  // the first lane's channel
      auto ivec = [&](const int32_t* a) {
        return kPerCol ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + c))
                       : _mm256_set1_epi32(a[c]);
      };
      auto fvec = [&](const float* a) {
        return kPerCol ? _mm256_loadu_ps(a + c) : _mm256_set1_ps(a[c]);
      };
      auto dvec = [&](const double* a, int h) {
        return kPerCol ? _mm256_loadu_pd(a + c + 4 * h) : _mm256_set1_pd(a[c]);
      };
      __m256i v;
      if (cnt == 8) {
        v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + i * acc_stride + j));
      } else {
        alignas(32) int32_t tmp[8] = {};
        std::memcpy(tmp, acc + i * acc_stride + j, static_cast<size_t>(cnt) * 4);
        v = _mm256_load_si256(reinterpret_cast<const __m256i*>(tmp));
      }
      v = _mm256_add_epi32(v, ivec(p.bias));
      if constexpr (kKind == 0) {
        store_lanes(static_cast<int32_t*>(y) + i * ldy + j, v, cnt);
      } else if constexpr (kKind == 3) {
        __m256 f = opaque(_mm256_mul_ps(_mm256_cvtepi32_ps(v), fvec(p.scale)));
        if (p.float_bias) f = _mm256_add_ps(f, fvec(p.float_bias));
        store_lanes(static_cast<float*>(y) + i * ldy + j, f, cnt);
      } else {
        __m256i q;
        if constexpr (kKind == 1) {
          __m128i half[2];
          for (int h = 0; h < 2; ++h) {
            const __m128i vi = h ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v);
            __m256d d = opaque(_mm256_mul_pd(_mm256_cvtepi32_pd(vi), dvec(p.scale_f64, h)));
            d = _mm256_min_pd(_mm256_max_pd(_mm256_add_pd(d, zp_d), lo_d), hi_d);
            half[h] = _mm256_cvttpd_epi32(
                _mm256_round_pd(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
          }
          q = _mm256_set_m128i(half[1], half[0]);
        } else {
          __m256 f = opaque(_mm256_mul_ps(_mm256_cvtepi32_ps(v), fvec(p.scale)));
          f = _mm256_round_ps(_mm256_min_ps(_mm256_max_ps(f, lo_f), hi_f),
                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
          q = _mm256_add_epi32(_mm256_cvttps_epi32(f), zp_i);
        }
        store_codes(q, u8, cnt, static_cast<uint8_t*>(y) + i * ldy + j);
      }
    }
  }
}

template <bool kPerCol>
void epilogue_for(const Q8ChannelEpilogue& p, const int32_t* acc, int64_t acc_stride,
                  int64_t rows, int64_t cols, void* y, int64_t ldy) {
  switch (p.output) {
    case QGemmOutput::int32:
      return epilogue<0, kPerCol>(p, acc, acc_stride, rows, cols, y, ldy);
    case QGemmOutput::float32:
      return epilogue<3, kPerCol>(p, acc, acc_stride, rows, cols, y, ldy);
    case QGemmOutput::quantized:
      if (p.rounding == RequantRounding::onnx_reference)
        return epilogue<1, kPerCol>(p, acc, acc_stride, rows, cols, y, ldy);
      return epilogue<2, kPerCol>(p, acc, acc_stride, rows, cols, y, ldy);
  }
}

}  // namespace

void q8_spmm_epilogue_avx2(const Q8ChannelEpilogue& p, const int32_t* acc, int64_t acc_stride,
                           int64_t rows, int64_t cols, void* y, int64_t ldy) {
  if (p.per_column) epilogue_for<true>(p, acc, acc_stride, rows, cols, y, ldy);
  else epilogue_for<false>(p, acc, acc_stride, rows, cols, y, ldy);
}

// Defines the .inc lines of this ISA (the isa token selects the macro).
#define SLIVER_SPMM_DEFINE_avx2(name, nt, r, kr) \
  void name(const Q8SpmmArgs& p) { run<nt, r, kr>(p); }
#define SLIVER_SPMM_DEFINE_scalar(name, nt, r, kr)
#define SLIVER_SPMM_DEFINE_avx512vnni(name, nt, r, kr)
#define SLIVER_Q8_SPMM_KERNEL(name, nt, r, kr, isa) SLIVER_SPMM_DEFINE_##isa(name, nt, r, kr)
#include "q8_spmm.inc"
#undef SLIVER_Q8_SPMM_KERNEL

const Q8SpmmHelpers kQ8SpmmHelpersAvx2 = {pack_rows, pack_cols, q8_spmm_epilogue_avx2};

}  // namespace sliver
