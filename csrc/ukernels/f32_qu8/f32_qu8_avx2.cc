// f32_qu8 AVX2 kernels: 8 floats per step, bit-identical to the scalar twins.
#include <immintrin.h>

#include <cstdint>

#include "f32_qu8.h"

namespace sliver {

void f32_minmax_avx2(const float* x, int64_t n, float* lo, float* hi, bool* nan) {
  __m256 l = _mm256_setzero_ps(), h = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    l = _mm256_min_ps(v, l);  // v < l ? v : l
    h = _mm256_max_ps(v, h);  // v > h ? v : h
  }
  alignas(32) float ls[8], hs[8];
  _mm256_store_ps(ls, l);
  _mm256_store_ps(hs, h);
  float rl = 0.f, rh = 0.f;
  bool rb = _mm256_movemask_ps(bad) != 0;
  for (int k = 0; k < 8; ++k) {  // lanes hold finite values or +0 unless a NaN was seen
    rl = ls[k] < rl ? ls[k] : rl;
    rh = hs[k] > rh ? hs[k] : rh;
  }
  for (; i < n; ++i) {
    const float v = x[i];
    rb |= v != v;
    rl = v < rl ? v : rl;
    rh = v > rh ? v : rh;
  }
  *lo = rl;
  *hi = rh;
  *nan = rb;
}

void f32_qu8_quantize_avx2(const float* x, int64_t n, float scale, int32_t zp, uint8_t* y) {
  const __m256 s = _mm256_set1_ps(scale);
  const __m256 lo = _mm256_set1_ps(static_cast<float>(0 - zp));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(255 - zp));
  const __m256i z = _mm256_set1_epi32(zp);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i), s);
    v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);  // max(NaN, lo) = lo
    v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i c = _mm256_add_epi32(_mm256_cvttps_epi32(v), z);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(y + i), _mm_packus_epi16(w, w));
  }
  if (i < n) f32_qu8_quantize_scalar(x + i, n - i, scale, zp, y + i);
}

}  // namespace sliver
