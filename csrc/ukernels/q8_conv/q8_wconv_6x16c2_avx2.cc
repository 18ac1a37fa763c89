// q8_wconv_6x16c2_avx2: a block of output pixels x 16 columns per call, in tiles of 6 pixels,
// on a widened int16 image (q8_wconv.h), requantized from the registers; and the AVX2 widening.
//
// Registers: 12 accumulators (started at the column terms), the pair's two weight vectors and
// one broadcast: 15 of 16. Per pair: 8 loads, 12 vpmaddwd and 12 vpaddd; on Zen 3 the adds
// share the multipliers' pipes, which bounds it at ~1.6 vpmaddwd per cycle (~25 MACs per
// cycle). The epilogue costs ~12 instructions per row of 16 codes: on a first layer (K = 9-27)
// or a 1x1 conv on 16 channels that is a third of the time.
#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <cstdint>

#include "q8_wconv.h"
#include "q8_widen_planes.h"
#include "ukernels/q8_gemm/q8_requant_avx2.h"

// The tile and its epilogue are inlined into the block loop, so the loop hoists what the tiles
// share (constants, pointers) instead of reloading them per tile.
#define SLIVER_WCONV_INLINE __attribute__((always_inline)) inline

namespace sliver {
namespace {

inline __m256i bcast(const int16_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

inline __m256i load(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// Slots 0-7 (v0) and 8-15 (v1) of a panel of more than 8 columns -> its 16 codes in column
// order (slot order, q8_wconv.h, makes the in-lane packs come out in order).
template <RequantForm kForm>
inline __m128i requant_slots(__m256i v0, __m256i v1, const double* m, const float* m32,
                             const q8avx2::RequantConsts& k) {
  if constexpr (kForm == RequantForm::short_f32) {
    const __m256i w =
        _mm256_packs_epi32(q8avx2::requant8_f32(v0, m32, k), q8avx2::requant8_f32(v1, m32 + 8, k));
    return q8avx2::pack_clamp(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1), k);
  } else {
    const __m128i x0 = q8avx2::requant4<kForm>(_mm256_castsi256_si128(v0), m, k);
    const __m128i x1 = q8avx2::requant4<kForm>(_mm256_extracti128_si256(v0, 1), m + 4, k);
    const __m128i x2 = q8avx2::requant4<kForm>(_mm256_castsi256_si128(v1), m + 8, k);
    const __m128i x3 = q8avx2::requant4<kForm>(_mm256_extracti128_si256(v1, 1), m + 12, k);
    return q8avx2::pack_clamp(_mm_packs_epi32(x0, x2), _mm_packs_epi32(x1, x3), k);
  }
}

// Requantizes the mr finished rows of c (row i in c[2 i], c[2 i + 1], column terms included)
// into y.
template <bool kHalf, RequantForm kForm>
SLIVER_WCONV_INLINE void finish(const Q8WconvBlock& a, const q8avx2::RequantConsts& k,
                                int64_t mr, uint8_t* y, const __m256i* c) {
  const double* m = a.rq->multiplier + a.n0;
  const float* m32 = a.rq->multiplier_f32 + a.n0;
  for (int64_t i = 0; i < mr; ++i) {
    const __m128i q = kHalf ? q8avx2::requant8<kForm>(c[2 * i], m, m32, k)
                            : requant_slots<kForm>(c[2 * i], c[2 * i + 1], m, m32, k);
    q8avx2::store_bytes(y + i * a.ldy, q, a.nc);
  }
}

// One tile: rows a0..a5 (rows past mr repeat row 0: their sums are computed and dropped).
template <bool kHalf, RequantForm kForm>
SLIVER_WCONV_INLINE void tile(const Q8WconvBlock& a, const q8avx2::RequantConsts& k,
                              const int16_t* const* px, int64_t mr, uint8_t* y) {
  // Named accumulators, started at the column terms, and handed to the epilogue as an array:
  // passed by value row by row, GCC moves them through the stack on every pair (2x slower).
  const int32_t* ct = a.rq->col_term + a.n0;
  __m256i c0 = load(ct), c2 = c0, c4 = c0, c6 = c0, c8 = c0, c10 = c0;
  __m256i c1 = kHalf ? c0 : load(ct + 8), c3 = c1, c5 = c1, c7 = c1, c9 = c1, c11 = c1;
  const int16_t* b = a.b;
  const int16_t* a0 = px[0];
  const int16_t* a1 = px[mr > 1 ? 1 : 0];
  const int16_t* a2 = px[mr > 2 ? 2 : 0];
  const int16_t* a3 = px[mr > 3 ? 3 : 0];
  const int16_t* a4 = px[mr > 4 ? 4 : 0];
  const int16_t* a5 = px[mr > 5 ? 5 : 0];
  const int64_t* off = a.pair_off;
  for (int64_t q = 0; q < a.npairs; ++q, b += 32) {
    const int64_t p = off[q];
    const __m256i w0 = load(b);
    __m256i x = bcast(a0 + p);
    c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(x, w0));
    if constexpr (!kHalf) {
      const __m256i w1 = load(b + 16);
      c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(x, w1));
      x = bcast(a1 + p);
      c2 = _mm256_add_epi32(c2, _mm256_madd_epi16(x, w0));
      c3 = _mm256_add_epi32(c3, _mm256_madd_epi16(x, w1));
      x = bcast(a2 + p);
      c4 = _mm256_add_epi32(c4, _mm256_madd_epi16(x, w0));
      c5 = _mm256_add_epi32(c5, _mm256_madd_epi16(x, w1));
      x = bcast(a3 + p);
      c6 = _mm256_add_epi32(c6, _mm256_madd_epi16(x, w0));
      c7 = _mm256_add_epi32(c7, _mm256_madd_epi16(x, w1));
      x = bcast(a4 + p);
      c8 = _mm256_add_epi32(c8, _mm256_madd_epi16(x, w0));
      c9 = _mm256_add_epi32(c9, _mm256_madd_epi16(x, w1));
      x = bcast(a5 + p);
      c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(x, w0));
      c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(x, w1));
    } else {
      c2 = _mm256_add_epi32(c2, _mm256_madd_epi16(bcast(a1 + p), w0));
      c4 = _mm256_add_epi32(c4, _mm256_madd_epi16(bcast(a2 + p), w0));
      c6 = _mm256_add_epi32(c6, _mm256_madd_epi16(bcast(a3 + p), w0));
      c8 = _mm256_add_epi32(c8, _mm256_madd_epi16(bcast(a4 + p), w0));
      c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(bcast(a5 + p), w0));
    }
  }
  const __m256i c[12] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11};
  finish<kHalf, kForm>(a, k, mr, y, c);
}

template <bool kHalf, RequantForm kForm>
void block(const Q8WconvBlock& a) {
  const q8avx2::RequantConsts k(*a.rq);
  for (int64_t p0 = 0; p0 < a.pixels; p0 += kQ8WconvMR)
    tile<kHalf, kForm>(a, k, a.px + p0, std::min<int64_t>(kQ8WconvMR, a.pixels - p0),
                       a.y + p0 * a.ldy);
}

template <bool kHalf>
void by_form(const Q8WconvBlock& a) {
  switch (a.rq->form) {
    case RequantForm::short_f32: return block<kHalf, RequantForm::short_f32>(a);
    case RequantForm::short_f64: return block<kHalf, RequantForm::short_f64>(a);
    default: return block<kHalf, RequantForm::full>(a);
  }
}

}  // namespace

void q8_wconv_6x16c2_avx2(const Q8WconvBlock& a) {
  assert(a.pixels >= 1 && a.nc >= 1 && a.nc <= kQ8WconvNR && a.npairs >= 1);
  assert((reinterpret_cast<uintptr_t>(a.b) & 31) == 0);
  if (a.nc <= 8) return by_form<true>(a);
  by_form<false>(a);
}

void q8_widen_avx2(const uint8_t* src, int64_t n, int64_t c, int64_t plane, bool signed_x,
                   int32_t zp, int16_t* dst) {
  if (plane != 0 && c > 1) {
    return signed_x ? q8widen::planes<int8_t>(src, n, c, plane, zp, dst)
                    : q8widen::planes<uint8_t>(src, n, c, plane, zp, dst);
  }
  n *= c;  // one run of codes
  const __m256i z = _mm256_set1_epi16(static_cast<int16_t>(zp));
  int64_t i = 0;
  if (signed_x) {
    for (; i + 16 <= n; i += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                          _mm256_sub_epi16(_mm256_cvtepi8_epi16(v), z));
    }
    for (; i < n; ++i) dst[i] = static_cast<int16_t>(static_cast<int8_t>(src[i]) - zp);
  } else {
    for (; i + 16 <= n; i += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                          _mm256_sub_epi16(_mm256_cvtepu8_epi16(v), z));
    }
    for (; i < n; ++i) dst[i] = static_cast<int16_t>(src[i] - zp);
  }
}

}  // namespace sliver
