// Shared pieces of this folder's AVX2 kernels (q8_vaddmul, q8_vbinary, q8_vlut2): code loads,
// saturating stores and the 32-output block drivers. Included by *_avx2.cc files only.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace sliver::q8_simd_avx2 {

/// v, but as a value the compiler must have rounded: -mfma may not fuse its multiply into a
/// later add (MLAS rounds the product of QLinearMul before adding the zero point).
inline __m256 opaque(__m256 v) {
  __asm__("" : "+x"(v));
  return v;
}

/// The 8 codes at p, as floats (exact).
template <bool kSigned>
inline __m256 load8(const uint8_t* p) {
  const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return _mm256_cvtepi32_ps(kSigned ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v));
}

/// The code at p, as a float.
template <bool kSigned>
inline float code(const uint8_t* p) {
  return kSigned ? static_cast<float>(static_cast<int8_t>(*p)) : static_cast<float>(*p);
}

/// 32 int32 codes (i0 holds outputs 0-7, ..., i3 outputs 24-31) -> bytes at y, saturated to
/// the int8 or uint8 range.
inline void pack32(__m256i i0, __m256i i1, __m256i i2, __m256i i3, bool is_signed, uint8_t* y) {
  // Packs work per 128-bit lane: dword k of `bytes` holds outputs of i(k%4), half k/4.
  const __m256i w01 = _mm256_packs_epi32(i0, i1), w23 = _mm256_packs_epi32(i2, i3);
  const __m256i bytes = is_signed ? _mm256_packs_epi16(w01, w23) : _mm256_packus_epi16(w01, w23);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(y), _mm256_permutevar8x32_epi32(bytes, order));
}

/// 32 values (v0 holds outputs 0-7, ..., v3 outputs 24-31) -> codes at y, the way MLAS's
/// QLinearAdd/QLinearMul finish: cvtps2dq (round half to even in the default MXCSR mode; NaN and
/// |v| >= 2^31 become INT_MIN), then saturating packs. No float clamp first, so a value past
/// 2^31 lands on qmin, not qmax: that is what onnxruntime computes, and we match it.
template <bool kSigned>
inline void store32(__m256 v0, __m256 v1, __m256 v2, __m256 v3, uint8_t* y) {
  pack32(_mm256_cvtps_epi32(v0), _mm256_cvtps_epi32(v1), _mm256_cvtps_epi32(v2),
         _mm256_cvtps_epi32(v3), kSigned, y);
}

/// y[0, n) = the code of v (one value repeated).
template <bool kSigned>
inline void fill(int64_t n, __m256 v, uint8_t* y) {
  alignas(32) uint8_t t[32];
  store32<kSigned>(v, v, v, v, t);
  std::memset(y, t[0], static_cast<size_t>(n));
}

/// blk(x, y) on 32 outputs at a time; the last partial block runs on zero-padded copies, so
/// exactly n codes are read and n written.
template <class Block>
inline void drive1(int64_t n, const uint8_t* x, uint8_t* y, Block&& blk) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) blk(x + i, y + i);
  if (i == n) return;
  const size_t r = static_cast<size_t>(n - i);
  alignas(32) uint8_t tx[32] = {}, ty[32];
  std::memcpy(tx, x + i, r);
  blk(tx, ty);
  std::memcpy(y + i, ty, r);
}

/// blk(a, b, y) on 32 outputs at a time, both operands advancing; tail as drive1.
template <class Block>
inline void drive2(int64_t n, const uint8_t* a, const uint8_t* b, uint8_t* y, Block&& blk) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) blk(a + i, b + i, y + i);
  if (i == n) return;
  const size_t r = static_cast<size_t>(n - i);
  alignas(32) uint8_t ta[32] = {}, tb[32] = {}, ty[32];
  std::memcpy(ta, a + i, r);
  std::memcpy(tb, b + i, r);
  blk(ta, tb, ty);
  std::memcpy(y + i, ty, r);
}

}  // namespace sliver::q8_simd_avx2
