// q8_dwconv_nhwc_avx2: 16 channels per step; per tap pair two 16-byte loads, an unpack into
// (tap t, tap t+1) byte pairs, a widening to int16 and two vpmaddwd (8 channels each, both
// taps in one instruction). The sums stay in registers through the requantization
// (q8_requant_avx2.h). Bit-identical to q8_dwconv_nhwc_scalar.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "../q8_gemm/q8_requant_avx2.h"
#include "q8_dwconv.h"

namespace sliver {
namespace {

template <bool kSigned>
inline __m256i widen(__m128i v) {
  return kSigned ? _mm256_cvtepi8_epi16(v) : _mm256_cvtepu8_epi16(v);
}

// Channels [c, c + n) of one pixel, n <= 16 (a ragged block reads its n codes through a copy).
// kPairs > 0: the pair count known at compile time (3x3 windows), so the loop unrolls and the
// tap pointers stay in registers; 0: a.pairs at run time.
template <bool kSigned, RequantForm kForm, bool kFull, int kPairs>
inline void block(const Q8DwconvArgs& a, const uint8_t* const* taps, int64_t off, int64_t c,
                  int64_t n, const int16_t* w, const q8avx2::RequantConsts& k, uint8_t* y) {
  const Q8ConvRequant& rq = *a.rq;
  __m256i acc0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rq.col_term + c));
  __m256i acc1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rq.col_term + c + 8));
  const int64_t pairs = kPairs > 0 ? kPairs : a.pairs;
#pragma GCC unroll 8
  for (int64_t p = 0; p < pairs; ++p, w += 32) {
    const uint8_t* p0 = taps[2 * p] + off + c;
    const uint8_t* p1 = taps[2 * p + 1] + off + c;
    __m128i x0, x1;
    if constexpr (kFull) {
      x0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p0));
      x1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p1));
    } else {
      alignas(16) uint8_t b0[16] = {}, b1[16] = {};
      std::memcpy(b0, p0, static_cast<size_t>(n));
      std::memcpy(b1, p1, static_cast<size_t>(n));
      x0 = _mm_load_si128(reinterpret_cast<const __m128i*>(b0));
      x1 = _mm_load_si128(reinterpret_cast<const __m128i*>(b1));
    }
    const __m256i lo = widen<kSigned>(_mm_unpacklo_epi8(x0, x1));
    const __m256i hi = widen<kSigned>(_mm_unpackhi_epi8(x0, x1));
    acc0 = _mm256_add_epi32(
        acc0, _mm256_madd_epi16(lo, _mm256_load_si256(reinterpret_cast<const __m256i*>(w))));
    acc1 = _mm256_add_epi32(
        acc1, _mm256_madd_epi16(hi, _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 16))));
  }
  q8avx2::store_bytes(
      y + c, q8avx2::requant16<kForm>(acc0, acc1, rq.multiplier + c, rq.multiplier_f32 + c, k), n);
}

template <bool kSigned, RequantForm kForm, int kPairs>
void run(const Q8DwconvArgs& a) {
  const q8avx2::RequantConsts k(*a.rq);
  const int64_t C = a.channels, full = C / 16 * 16;
  // The tap pointers as locals: a.taps might alias the stores to y, which would make every
  // block reload them.
  const uint8_t* taps[2 * 13];
  const int64_t ntaps = 2 * a.pairs;
  const uint8_t* const* tp = a.taps;
  if (ntaps <= 2 * 13) {
    std::copy(a.taps, a.taps + ntaps, taps);
    tp = taps;
  }
  for (int64_t px = 0; px < a.pixels; ++px) {
    const int64_t off = px * a.step;
    uint8_t* y = a.y + px * C;
    const int16_t* w = a.w;
    for (int64_t c = 0; c < full; c += 16, w += a.pairs * 32)
      block<kSigned, kForm, true, kPairs>(a, tp, off, c, 16, w, k, y);
    if (full < C) block<kSigned, kForm, false, kPairs>(a, tp, off, full, C - full, w, k, y);
  }
}

template <bool kSigned, RequantForm kForm>
void run_pairs(const Q8DwconvArgs& a) {
  if (a.pairs == 5) run<kSigned, kForm, 5>(a);  // 3x3
  else run<kSigned, kForm, 0>(a);
}

template <bool kSigned>
void dispatch(const Q8DwconvArgs& a) {
  switch (a.rq->form) {
    case RequantForm::short_f32: return run_pairs<kSigned, RequantForm::short_f32>(a);
    case RequantForm::short_f64: return run_pairs<kSigned, RequantForm::short_f64>(a);
    default: return run_pairs<kSigned, RequantForm::full>(a);
  }
}

}  // namespace

void qu8_dwconv_nhwc_avx2(const Q8DwconvArgs& a) { dispatch<false>(a); }
void qs8_dwconv_nhwc_avx2(const Q8DwconvArgs& a) { dispatch<true>(a); }

}  // namespace sliver
