// Vector math for AVX-512 (F/DQ): f32_vmath_avx2.h's functions on 16 lanes, same formulas and
// operation order, so the same accuracy (the tests check both). Include only from *_avx512.cc.
//
// Each function reduces its argument to a small interval where a short polynomial is accurate,
// then undoes the reduction exactly (powers of two) or with a division (correctly rounded):
//   exp   x = n ln2 + r, |r| <= ln2/2; e^r by its degree-7 Taylor polynomial (truncation 5e-9);
//         2^n applied as two factors so results down to the denormals and up to inf are right.
//   log   x = 2^e m, m in [sqrt(1/2), sqrt 2); log m = 2 atanh(s), s = (m-1)/(m+1) <= 0.172, odd
//         series to s^9 (truncation 4e-9).
//   tanh  odd Taylor series to x^17 below |x| = 0.5 (truncation 1e-8); 1 - 2/(e^{2|x|} + 1) above,
//         where the subtraction loses at most one bit.
//   sigmoid  e = exp(-|x|): 1/(1+e) for x >= 0, e/(1+e) below, so no 1 - ... cancellation.
//   erf   Maclaurin series to x^21 below |x| = 1 (truncation 1.1e-9); 1 - erfc above, with
//         erfc(z) = t exp(-z^2 + P(t)), t = 1/(1 + z/2) (Numerical Recipes' Chebyshev fit, relative
//         error < 1.2e-7, which erf = 1 - erfc shrinks further since erfc(1) = 0.16); z^2 is kept
//         exact (two floats) into the exponential, which gelu's far tail needs.
// Float rounding adds a few ulp; measured maxima are the kVUnaryMaxRelError constants the tests
// check (tests/test_native_ops.py).
#pragma once

#include <immintrin.h>

namespace sliver::vmath_avx512 {

inline __m512 set1(float v) { return _mm512_set1_ps(v); }
inline __m512 absv(__m512 x) { return _mm512_andnot_ps(set1(-0.f), x); }
inline __m512 signbits(__m512 x) { return _mm512_and_ps(set1(-0.f), x); }
// the lanes whose sign bit is set (what blendv keys on: -0 and negative NaNs included)
inline __mmask16 signmask(__m512 x) { return _mm512_movepi32_mask(_mm512_castps_si512(x)); }

inline __m512 exp_ps(__m512 x) {
  // min/max return their second operand when either is NaN: x second keeps NaN.
  x = _mm512_min_ps(set1(89.f), x);
  x = _mm512_max_ps(set1(-104.f), x);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, set1(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln2 = hi + lo with hi's 9 significant bits: n * hi is exact for |n| < 2^15.
  __m512 r = _mm512_fnmadd_ps(n, set1(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, set1(-2.12194440e-4f), r);
  // Estrin's scheme (pairs, then r^2 and r^4): 4 dependent steps instead of Horner's 8, so
  // more vectors fit the out-of-order window (the callers are latency-bound, not port-bound).
  const __m512 r2 = _mm512_mul_ps(r, r);
  const __m512 a01 = _mm512_add_ps(set1(1.f), r);
  const __m512 a23 = _mm512_fmadd_ps(set1(1.f / 6), r, set1(0.5f));
  const __m512 a45 = _mm512_fmadd_ps(set1(1.f / 120), r, set1(1.f / 24));
  const __m512 a67 = _mm512_fmadd_ps(set1(1.f / 5040), r, set1(1.f / 720));
  const __m512 b03 = _mm512_fmadd_ps(a23, r2, a01);
  const __m512 b47 = _mm512_fmadd_ps(a67, r2, a45);
  const __m512 p = _mm512_fmadd_ps(b47, _mm512_mul_ps(r2, r2), b03);
  // n in [-151, 129]: 2^n = 2^n1 * 2^n2 with both halves normal; the last product rounds once.
  const __m512i ni = _mm512_cvtps_epi32(n);
  const __m512i n1 = _mm512_srai_epi32(ni, 1);
  const __m512i n2 = _mm512_sub_epi32(ni, n1);
  const __m512i bias = _mm512_set1_epi32(127);
  const __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23));
  const __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23));
  return _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
}

inline __m512 log_ps(__m512 x) {
  const __m512 zero = _mm512_setzero_ps();
  // Denormals: scale into the normal range first (2^25), take 25 off the exponent after.
  const __mmask16 tiny = _mm512_cmp_ps_mask(x, set1(1.17549435e-38f), _CMP_LT_OQ);
  const __m512 xs = _mm512_mask_blend_ps(tiny, x, _mm512_mul_ps(x, set1(33554432.f)));
  const __m512i bits = _mm512_castps_si512(xs);
  __m512 e = _mm512_cvtepi32_ps(
      _mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(127)));
  e = _mm512_sub_ps(e, _mm512_maskz_mov_ps(tiny, set1(25.f)));
  __m512 m = _mm512_castsi512_ps(_mm512_or_si512(
      _mm512_and_si512(bits, _mm512_set1_epi32(0x007fffff)), _mm512_set1_epi32(0x3f800000)));
  const __mmask16 big = _mm512_cmp_ps_mask(m, set1(1.41421356f), _CMP_GT_OQ);
  m = _mm512_mask_blend_ps(big, m, _mm512_mul_ps(m, set1(0.5f)));
  e = _mm512_add_ps(e, _mm512_maskz_mov_ps(big, set1(1.f)));
  const __m512 f = _mm512_sub_ps(m, set1(1.f));  // exact: m in [0.70, 1.42]
  const __m512 s = _mm512_div_ps(f, _mm512_add_ps(f, set1(2.f)));
  const __m512 s2 = _mm512_mul_ps(s, s);
  __m512 q = set1(2.f / 9);
  q = _mm512_fmadd_ps(q, s2, set1(2.f / 7));
  q = _mm512_fmadd_ps(q, s2, set1(2.f / 5));
  q = _mm512_fmadd_ps(q, s2, set1(2.f / 3));
  const __m512 logm = _mm512_fmadd_ps(_mm512_mul_ps(q, s2), s, _mm512_add_ps(s, s));
  // e ln2 + log m, with ln2 split so e * hi is exact.
  __m512 r = _mm512_fmadd_ps(e, set1(-2.12194440e-4f), logm);
  r = _mm512_fmadd_ps(e, set1(0.693359375f), r);
  // Special values: log 0 = -inf, log(x < 0) = NaN, log inf = inf, NaN stays NaN.
  r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero, _CMP_EQ_OQ), r, set1(-__builtin_inff()));
  r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), r, set1(__builtin_nanf("")));
  r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, set1(3.40282347e38f), _CMP_GT_OQ), r, x);
  r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), r, x);
  return r;
}

inline __m512 sigmoid_ps(__m512 x) {
  const __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), absv(x)));
  const __m512 s = _mm512_div_ps(set1(1.f), _mm512_add_ps(set1(1.f), e));
  return _mm512_mask_blend_ps(signmask(x), s, _mm512_mul_ps(e, s));  // x < 0: e/(1+e)
}

inline __m512 tanh_ps(__m512 x) {
  const __m512 ax = absv(x);
  const __m512 one = set1(1.f);
  __m512 big = _mm512_sub_ps(
      one, _mm512_div_ps(set1(2.f), _mm512_add_ps(exp_ps(_mm512_add_ps(ax, ax)), one)));
  big = _mm512_or_ps(big, signbits(x));
  const __m512 x2 = _mm512_mul_ps(x, x);
  // Taylor coefficients of tanh(x)/x - 1 in x^2: -1/3, 2/15, -17/315, 62/2835, ...
  __m512 p = set1(6404582.f / 10854718875.f);
  p = _mm512_fmadd_ps(p, x2, set1(-929569.f / 638512875.f));
  p = _mm512_fmadd_ps(p, x2, set1(21844.f / 6081075.f));
  p = _mm512_fmadd_ps(p, x2, set1(-1382.f / 155925.f));
  p = _mm512_fmadd_ps(p, x2, set1(62.f / 2835.f));
  p = _mm512_fmadd_ps(p, x2, set1(-17.f / 315.f));
  p = _mm512_fmadd_ps(p, x2, set1(2.f / 15.f));
  p = _mm512_fmadd_ps(p, x2, set1(-1.f / 3.f));
  const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, x2), x, x);
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(ax, set1(0.5f), _CMP_LT_OQ), big, small);
}

// erf(x) for |x| < 1 by its Maclaurin series: 2/sqrt(pi) sum (-1)^k x^(2k+1) / (k! (2k+1)).
inline __m512 erf_small_ps(__m512 x) {
  const __m512 x2 = _mm512_mul_ps(x, x);
  __m512 p = set1(-1.f / 76204800.f);
  p = _mm512_fmadd_ps(p, x2, set1(1.f / 6894720.f));
  p = _mm512_fmadd_ps(p, x2, set1(-1.f / 685440.f));
  p = _mm512_fmadd_ps(p, x2, set1(1.f / 75600.f));
  p = _mm512_fmadd_ps(p, x2, set1(-1.f / 9360.f));
  p = _mm512_fmadd_ps(p, x2, set1(1.f / 1320.f));
  p = _mm512_fmadd_ps(p, x2, set1(-1.f / 216.f));
  p = _mm512_fmadd_ps(p, x2, set1(1.f / 42.f));
  p = _mm512_fmadd_ps(p, x2, set1(-1.f / 10.f));
  p = _mm512_fmadd_ps(p, x2, set1(1.f / 3.f));
  p = _mm512_fnmadd_ps(p, x2, set1(1.f));
  return _mm512_mul_ps(_mm512_mul_ps(p, x), set1(1.12837916709551257f));
}

// erfc(z) for z >= 0 (used for z >= 1), relative error < 1.2e-7 plus rounding, given z and
// z^2 = z2_hi + z2_lo exactly. exp(-z^2 + P) is evaluated as exp(s) (1 + e) with s + e the exact
// sum: near z = 4 the exponent is ~16, and rounding it to float alone would cost 1e-6 relative.
inline __m512 erfc_pos_ps(__m512 z, __m512 z2_hi, __m512 z2_lo) {
  z = _mm512_min_ps(z, set1(12.f));  // erfc(12) underflows; also keeps inf finite for t
  const __m512 t = _mm512_div_ps(set1(1.f), _mm512_fmadd_ps(set1(0.5f), z, set1(1.f)));
  // The degree-9 fit in t by Estrin's scheme (5 dependent steps instead of 9, see exp_ps).
  const __m512 t2 = _mm512_mul_ps(t, t);
  const __m512 t4 = _mm512_mul_ps(t2, t2);
  const __m512 a01 = _mm512_fmadd_ps(set1(1.00002368f), t, set1(-1.26551223f));
  const __m512 a23 = _mm512_fmadd_ps(set1(0.09678418f), t, set1(0.37409196f));
  const __m512 a45 = _mm512_fmadd_ps(set1(0.27886807f), t, set1(-0.18628806f));
  const __m512 a67 = _mm512_fmadd_ps(set1(1.48851587f), t, set1(-1.13520398f));
  const __m512 a89 = _mm512_fmadd_ps(set1(0.17087277f), t, set1(-0.82215223f));
  const __m512 b03 = _mm512_fmadd_ps(a23, t2, a01);
  const __m512 b47 = _mm512_fmadd_ps(a67, t2, a45);
  const __m512 c07 = _mm512_fmadd_ps(b47, t4, b03);
  const __m512 p = _mm512_fmadd_ps(a89, _mm512_mul_ps(t4, t4), c07);
  // TwoSum(-z2_hi, p): s + e == -z2_hi + p exactly.
  const __m512 a = _mm512_sub_ps(_mm512_setzero_ps(), z2_hi);
  const __m512 s = _mm512_add_ps(a, p);
  const __m512 bb = _mm512_sub_ps(s, a);
  const __m512 e = _mm512_add_ps(_mm512_sub_ps(a, _mm512_sub_ps(s, bb)), _mm512_sub_ps(p, bb));
  const __m512 corr = _mm512_sub_ps(e, z2_lo);  // tiny: exp(corr) = 1 + corr
  const __m512 ex = exp_ps(s);
  return _mm512_mul_ps(t, _mm512_fmadd_ps(ex, corr, ex));
}

// x^2 = hi + lo exactly (FMA gives the rounding error of the product).
inline void square_exact(__m512 x, __m512* hi, __m512* lo) {
  *hi = _mm512_mul_ps(x, x);
  *lo = _mm512_fmsub_ps(x, x, *hi);
}

inline __m512 erf_ps(__m512 x) {
  const __m512 ax = absv(x);
  __m512 hi, lo;
  square_exact(_mm512_min_ps(ax, set1(12.f)), &hi, &lo);  // erfc(12) = 0 in float; keeps inf out
  const __m512 big = _mm512_or_ps(_mm512_sub_ps(set1(1.f), erfc_pos_ps(ax, hi, lo)), signbits(x));
  const __m512 r =
      _mm512_mask_blend_ps(_mm512_cmp_ps_mask(ax, set1(1.f), _CMP_LT_OQ), big, erf_small_ps(x));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), r, x);
}

// 0.5 x (1 + erf(z)), z = x / sqrt 2, from erfc alone: 1 + erf(z) = 2 - erfc(z) for z >= 0 and
// erfc(|z|) below (no cancellation). erfc's relative error bounds the result's near z = 0 too
// (there erfc ~ 1 and 1 + erf ~ 1), so one branch serves every lane: no series, no blend of two.
// z^2 = x^2 / 2 is taken from x exactly (z itself is rounded, which far out would cost ~z^2 ulp).
inline __m512 gelu_erf_ps(__m512 x) {
  const __m512 z = _mm512_mul_ps(x, set1(0.70710678118654752f));
  __m512 hi, lo;
  square_exact(_mm512_min_ps(absv(x), set1(17.f)), &hi, &lo);  // erfc(17 / sqrt 2) = 0 in float
  const __m512 ec =
      erfc_pos_ps(absv(z), _mm512_mul_ps(hi, set1(0.5f)), _mm512_mul_ps(lo, set1(0.5f)));
  const __m512 w = _mm512_mask_blend_ps(signmask(z), _mm512_sub_ps(set1(2.f), ec), ec);
  const __m512 r = _mm512_mul_ps(_mm512_mul_ps(set1(0.5f), x), w);
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), r, x);
}

// 0.5 x (1 + tanh(u)) = x sigmoid(2u).
inline __m512 gelu_tanh_ps(__m512 x) {
  const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
  const __m512 u2 = _mm512_mul_ps(set1(2.f * 0.79788456080286536f),
                                  _mm512_fmadd_ps(set1(0.044715f), x3, x));
  return _mm512_mul_ps(x, sigmoid_ps(u2));
}

}  // namespace sliver::vmath_avx512
