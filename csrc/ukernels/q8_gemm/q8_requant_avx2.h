// AVX2 requantization of corrected int32 sums to 8-bit codes for the conv kernels (wconv and
// depthwise), 16 columns at a time; include only from *_avx2.cc.
//
// The three RequantForm of requant.h, each bit-identical to its onnx_reference order where the
// caller (packing) proved it exact for every accumulator of every column:
//  * full:      d = f64(v) * m (rounded), d + zp (rounded), clamped, rounded half to even.
//  * short_f64: rne(fma(f64(v), m, zp)) -- one rounding, 4 instructions per 4 values fewer.
//  * short_f32: fma(f32(v), m, zp + 1.5 * 2^23), whose own rounding is the round half to even;
//               the code is the result's bits minus those of 1.5 * 2^23. 3 instructions per 8
//               values (the float64 forms need ~12), which matters for small-K layers where the
//               requantization costs as much as the products.
// The short forms' int32 results are clamped as bytes: the saturating packs are monotone, so
// clamping after them equals clamping before. All rely on the default MXCSR rounding mode
// (nearest even), like all float code here.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "sliver/requant.h"

namespace sliver {
namespace q8avx2 {

struct RequantConsts {
  explicit RequantConsts(const Q8ConvRequant& rq)
      : zp(_mm256_set1_pd(rq.y_zero_point)),
        lo(_mm256_set1_pd(rq.qmin)),
        hi(_mm256_set1_pd(rq.qmax)),
        zp_magic(_mm256_set1_ps(static_cast<float>(rq.y_zero_point) + kMagic)),
        magic_bits(_mm256_set1_epi32(0x4B400000)),  // the bits of 1.5 * 2^23
        lo8(_mm_set1_epi8(static_cast<char>(rq.qmin))),
        hi8(_mm_set1_epi8(static_cast<char>(rq.qmax))),
        y_signed(rq.y_signed),
        full_range(rq.qmin == (rq.y_signed ? -128 : 0) && rq.qmax == (rq.y_signed ? 127 : 255)) {}
  static constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  __m256d zp, lo, hi;
  __m256 zp_magic;
  __m256i magic_bits;
  __m128i lo8, hi8;
  bool y_signed;
  bool full_range;  // no activation clamp: the saturating packs are the clamp
};

// Keeps -mfma from contracting the full form's product with its add.
inline __m256d opaque_pd(__m256d v) {
  __asm__("" : "+x"(v));
  return v;
}

template <RequantForm kForm>
inline __m128i requant4(__m128i v, const double* m, const RequantConsts& k) {
  const __m256d d = _mm256_cvtepi32_pd(v), mv = _mm256_loadu_pd(m);
  if constexpr (kForm == RequantForm::short_f64) {
    return _mm256_cvtpd_epi32(_mm256_fmadd_pd(d, mv, k.zp));
  } else {
    __m256d r = _mm256_add_pd(opaque_pd(_mm256_mul_pd(d, mv)), k.zp);
    r = _mm256_min_pd(_mm256_max_pd(r, k.lo), k.hi);
    return _mm256_cvttpd_epi32(_mm256_round_pd(r, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
}

// short_f32: 8 sums -> 8 int32 codes (unclamped).
inline __m256i requant8_f32(__m256i v, const float* m, const RequantConsts& k) {
  const __m256 t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_loadu_ps(m), k.zp_magic);
  return _mm256_sub_epi32(_mm256_castps_si256(t), k.magic_bits);
}

// Two vectors of eight int16 codes -> 16 clamped bytes.
inline __m128i pack_clamp(__m128i w0, __m128i w1, const RequantConsts& k) {
  if (k.y_signed) {
    const __m128i b = _mm_packs_epi16(w0, w1);
    return k.full_range ? b : _mm_min_epi8(_mm_max_epi8(b, k.lo8), k.hi8);
  }
  const __m128i b = _mm_packus_epi16(w0, w1);
  return k.full_range ? b : _mm_min_epu8(_mm_max_epu8(b, k.lo8), k.hi8);
}

/// Columns 0-7 (v0) and 8-15 (v1) -> 16 codes; m / m32: their 16 multipliers.
template <RequantForm kForm>
inline __m128i requant16(__m256i v0, __m256i v1, const double* m, const float* m32,
                         const RequantConsts& k) {
  if constexpr (kForm == RequantForm::short_f32) {
    const __m256i q0 = requant8_f32(v0, m32, k), q1 = requant8_f32(v1, m32 + 8, k);
    return pack_clamp(_mm_packs_epi32(_mm256_castsi256_si128(q0), _mm256_extracti128_si256(q0, 1)),
                      _mm_packs_epi32(_mm256_castsi256_si128(q1), _mm256_extracti128_si256(q1, 1)),
                      k);
  } else {
    const __m128i x0 = requant4<kForm>(_mm256_castsi256_si128(v0), m, k);
    const __m128i x1 = requant4<kForm>(_mm256_extracti128_si256(v0, 1), m + 4, k);
    const __m128i x2 = requant4<kForm>(_mm256_castsi256_si128(v1), m + 8, k);
    const __m128i x3 = requant4<kForm>(_mm256_extracti128_si256(v1, 1), m + 12, k);
    return pack_clamp(_mm_packs_epi32(x0, x1), _mm_packs_epi32(x2, x3), k);
  }
}

/// Columns 0-7 -> 8 codes in the low half.
template <RequantForm kForm>
inline __m128i requant8(__m256i v0, const double* m, const float* m32, const RequantConsts& k) {
  __m128i w;
  if constexpr (kForm == RequantForm::short_f32) {
    const __m256i q = requant8_f32(v0, m32, k);
    w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  } else {
    w = _mm_packs_epi32(requant4<kForm>(_mm256_castsi256_si128(v0), m, k),
                        requant4<kForm>(_mm256_extracti128_si256(v0, 1), m + 4, k));
  }
  return pack_clamp(w, w, k);
}

/// Stores the first n (1..16) bytes of v.
inline void store_bytes(uint8_t* dst, __m128i v, int64_t n) {
  if (n == 16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), v);
  } else if (n == 8) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), v);
  } else {
    alignas(16) uint8_t tmp[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), v);
    std::memcpy(dst, tmp, static_cast<size_t>(n));
  }
}

}  // namespace q8avx2
}  // namespace sliver
