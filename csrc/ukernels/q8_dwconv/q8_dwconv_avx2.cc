// q8_dwconv_nhwc_avx2: 8 channels per vector; all taps accumulate in registers, then the
// requantization (requant.h's onnx_reference order, in float64) and a byte store, so the int32
// sums never leave the registers. Bit-identical to q8_dwconv_nhwc_scalar.
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "q8_dwconv.h"

namespace sliver {
namespace {

// Keeps -mfma from contracting the product with the following add (requant.h's contract).
inline __m256d opaque(__m256d v) {
  __asm__("" : "+x"(v));
  return v;
}

template <bool kSigned>
inline __m256i load8(const void* p) {  // 8 codes widened to int32
  int64_t bits;
  std::memcpy(&bits, p, sizeof(bits));
  const __m128i v = _mm_cvtsi64_si128(bits);
  return kSigned ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v);
}

// 8 int32 sums -> 8 codes (in the low 8 bytes).
inline __m128i requant8(__m256i acc, const double* m, __m256d zp, __m256d lo, __m256d hi,
                        bool signed_out) {
  __m128i half[2];
  for (int h = 0; h < 2; ++h) {
    const __m128i vi = h ? _mm256_extracti128_si256(acc, 1) : _mm256_castsi256_si128(acc);
    __m256d d = opaque(_mm256_mul_pd(_mm256_cvtepi32_pd(vi), _mm256_loadu_pd(m + 4 * h)));
    d = _mm256_min_pd(_mm256_max_pd(_mm256_add_pd(d, zp), lo), hi);
    half[h] =
        _mm256_cvttpd_epi32(_mm256_round_pd(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  const __m128i w16 = _mm_packs_epi32(half[0], half[1]);  // values are within the code range
  return signed_out ? _mm_packs_epi16(w16, w16) : _mm_packus_epi16(w16, w16);
}

template <bool kSigned>
void dwconv(int64_t channels, int ntaps, const void* const* taps, const int32_t* w,
            const int32_t* bias, const Q8DwconvParams& p, uint8_t* y) {
  const __m256i xz = _mm256_set1_epi32(p.x_zero_point);
  const __m256d zp = _mm256_set1_pd(p.y_zero_point), lo = _mm256_set1_pd(p.lo),
                hi = _mm256_set1_pd(p.hi);
  using T = std::conditional_t<kSigned, int8_t, uint8_t>;
  int64_t c = 0;
  for (; c + 8 <= channels; c += 8) {
    __m256i acc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias + c));
    for (int t = 0; t < ntaps; ++t) {
      const __m256i x = _mm256_sub_epi32(load8<kSigned>(static_cast<const T*>(taps[t]) + c), xz);
      const __m256i wv =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + t * channels + c));
      acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(x, wv));
    }
    _mm_storel_epi64(reinterpret_cast<__m128i*>(y + c),
                     requant8(acc, p.multiplier + c, zp, lo, hi, p.signed_out));
  }
  if (c == channels) return;
  // Ragged tail: the same arithmetic on copies padded to 8 lanes.
  const int64_t n = channels - c;
  alignas(32) int32_t b8[8] = {0}, w8[8];
  alignas(32) double m8[8] = {0};
  std::memcpy(b8, bias + c, n * sizeof(int32_t));
  std::memcpy(m8, p.multiplier + c, n * sizeof(double));
  __m256i acc = _mm256_load_si256(reinterpret_cast<const __m256i*>(b8));
  for (int t = 0; t < ntaps; ++t) {
    T x8[8] = {0};
    std::memcpy(x8, static_cast<const T*>(taps[t]) + c, n * sizeof(T));
    std::memset(w8, 0, sizeof(w8));
    std::memcpy(w8, w + t * channels + c, n * sizeof(int32_t));
    const __m256i x = _mm256_sub_epi32(load8<kSigned>(x8), xz);
    acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(x, _mm256_load_si256(reinterpret_cast<const __m256i*>(w8))));
  }
  alignas(16) uint8_t out[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(out), requant8(acc, m8, zp, lo, hi, p.signed_out));
  std::memcpy(y + c, out, static_cast<size_t>(n));
}

}  // namespace

void qu8_dwconv_nhwc_avx2(int64_t channels, int ntaps, const void* const* taps, const int32_t* w,
                          const int32_t* bias, const Q8DwconvParams& p, uint8_t* y) {
  dwconv<false>(channels, ntaps, taps, w, bias, p, y);
}

void qs8_dwconv_nhwc_avx2(int64_t channels, int ntaps, const void* const* taps, const int32_t* w,
                          const int32_t* bias, const Q8DwconvParams& p, uint8_t* y) {
  dwconv<true>(channels, ntaps, taps, w, bias, p, y);
}

}  // namespace sliver
