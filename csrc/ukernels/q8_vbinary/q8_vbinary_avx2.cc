// q8_vbinary_avx2: 8 elements per step, bit-identical to q8_vbinary_scalar: each float product
// is kept opaque so -mfma cannot contract it with the following add/sub.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "q8_vbinary.h"

namespace sliver {
namespace {

inline __m256 opaque(__m256 v) {
  __asm__("" : "+x"(v));
  return v;
}

// 8 codes (or one code repeated) -> (float(c) - zp) * scale.
inline __m256 dequant8(const uint8_t* x, int64_t stride, bool is_signed, __m256 zp, __m256 scale) {
  __m256i c;
  if (stride == 0) {
    c = _mm256_set1_epi32(is_signed ? int32_t{static_cast<int8_t>(*x)} : int32_t{*x});
  } else {
    int64_t bits;
    std::memcpy(&bits, x, sizeof(bits));
    const __m128i v = _mm_cvtsi64_si128(bits);
    c = is_signed ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v);
  }
  return opaque(_mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(c), zp), scale));
}

template <Q8BinaryOp kOp>
void run(const Q8BinaryParams& p, int64_t n, const uint8_t* a, int64_t as, const uint8_t* b,
         int64_t bs, uint8_t* y) {
  const __m256 za = _mm256_set1_ps(static_cast<float>(p.a_zero_point)),
               sa = _mm256_set1_ps(p.a_scale);
  const __m256 zb = _mm256_set1_ps(static_cast<float>(p.b_zero_point)),
               sb = _mm256_set1_ps(p.b_scale);
  const __m256 sy = _mm256_set1_ps(p.y_scale);
  const int32_t qmin = p.y_signed ? -128 : 0, qmax = qmin + 255;
  const __m256 flo = _mm256_set1_ps(static_cast<float>(qmin - p.y_zero_point));
  const __m256 fhi = _mm256_set1_ps(static_cast<float>(qmax - p.y_zero_point));
  const __m256i zy = _mm256_set1_epi32(p.y_zero_point);
  const __m256i clo = _mm256_set1_epi32(p.lo), chi = _mm256_set1_epi32(p.hi);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 fa = dequant8(a + i * as, as, p.a_signed, za, sa);
    const __m256 fb = dequant8(b + i * bs, bs, p.b_signed, zb, sb);
    __m256 v;
    if constexpr (kOp == Q8BinaryOp::add) v = _mm256_add_ps(fa, fb);
    if constexpr (kOp == Q8BinaryOp::sub) v = _mm256_sub_ps(fa, fb);
    if constexpr (kOp == Q8BinaryOp::mul) v = opaque(_mm256_mul_ps(fa, fb));
    if constexpr (kOp == Q8BinaryOp::div) v = _mm256_div_ps(fa, fb);
    if constexpr (kOp == Q8BinaryOp::max) v = _mm256_max_ps(fa, fb);  // fa > fb ? fa : fb
    if constexpr (kOp == Q8BinaryOp::min) v = _mm256_min_ps(fa, fb);  // fa < fb ? fa : fb
    __m256 q = _mm256_div_ps(v, sy);
    q = _mm256_min_ps(_mm256_max_ps(q, flo), fhi);  // max(NaN, lo) = lo
    q = _mm256_round_ps(q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256i c = _mm256_add_epi32(_mm256_cvttps_epi32(q), zy);
    c = _mm256_min_epi32(_mm256_max_epi32(c, clo), chi);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
    const __m128i bytes = p.y_signed ? _mm_packs_epi16(w, w) : _mm_packus_epi16(w, w);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(y + i), bytes);
  }
  if (i < n) q8_vbinary_scalar(p, n - i, a + i * as, as, b + i * bs, bs, y + i);
}

}  // namespace

void q8_vbinary_avx2(const Q8BinaryParams& p, int64_t n, const uint8_t* a, int64_t a_stride,
                     const uint8_t* b, int64_t b_stride, uint8_t* y) {
  switch (p.op) {
    case Q8BinaryOp::add: return run<Q8BinaryOp::add>(p, n, a, a_stride, b, b_stride, y);
    case Q8BinaryOp::sub: return run<Q8BinaryOp::sub>(p, n, a, a_stride, b, b_stride, y);
    case Q8BinaryOp::mul: return run<Q8BinaryOp::mul>(p, n, a, a_stride, b, b_stride, y);
    case Q8BinaryOp::div: return run<Q8BinaryOp::div>(p, n, a, a_stride, b, b_stride, y);
    case Q8BinaryOp::max: return run<Q8BinaryOp::max>(p, n, a, a_stride, b, b_stride, y);
    case Q8BinaryOp::min: return run<Q8BinaryOp::min>(p, n, a, a_stride, b, b_stride, y);
  }
}

}  // namespace sliver
