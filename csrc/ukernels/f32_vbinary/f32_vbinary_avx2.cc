// f32_v<op>_{vv,vs}_avx2: the binary kernels of f32_vbinary.inc, 8 floats per step, masked tail.
#include <immintrin.h>

#include <cassert>
#include <cstdint>

#include "f32_vbinary.h"

namespace sliver {
namespace {

// b_scalar: b is one float broadcast to every lane; otherwise a vector of n.
template <bool kBScalar, class F>
inline void map2(int64_t n, const float* a, const float* b, float* y, F f) {
  assert(n >= 0);
  const __m256 bs = kBScalar ? _mm256_broadcast_ss(b) : _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 b0 = kBScalar ? bs : _mm256_loadu_ps(b + i);
    const __m256 b1 = kBScalar ? bs : _mm256_loadu_ps(b + i + 8);
    const __m256 r0 = f(_mm256_loadu_ps(a + i), b0), r1 = f(_mm256_loadu_ps(a + i + 8), b1);
    _mm256_storeu_ps(y + i, r0);
    _mm256_storeu_ps(y + i + 8, r1);
  }
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(a + i), kBScalar ? bs : _mm256_loadu_ps(b + i)));
  if (i < n) {
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n - i)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256 bv = kBScalar ? bs : _mm256_maskload_ps(b + i, mask);
    _mm256_maskstore_ps(y + i, mask, f(_mm256_maskload_ps(a + i, mask), bv));
  }
}

// numpy semantics: NaN in either operand gives NaN. max_ps/min_ps return b when either is NaN,
// so only a NaN in a needs patching in.
inline __m256 nan_max(__m256 a, __m256 b) {
  return _mm256_blendv_ps(_mm256_max_ps(a, b), a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}
inline __m256 nan_min(__m256 a, __m256 b) {
  return _mm256_blendv_ps(_mm256_min_ps(a, b), a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}

}  // namespace

#define SLIVER_VBINARY_AVX2(op, expr)                                                   \
  void f32_v##op##_vv_avx2(int64_t n, const float* a, const float* b, float* y) {       \
    map2<false>(n, a, b, y, [](__m256 x, __m256 z) { return expr; });                   \
  }                                                                                     \
  void f32_v##op##_vs_avx2(int64_t n, const float* a, const float* b, float* y) {       \
    map2<true>(n, a, b, y, [](__m256 x, __m256 z) { return expr; });                    \
  }

SLIVER_VBINARY_AVX2(add, _mm256_add_ps(x, z))
SLIVER_VBINARY_AVX2(sub, _mm256_sub_ps(x, z))
SLIVER_VBINARY_AVX2(rsub, _mm256_sub_ps(z, x))
SLIVER_VBINARY_AVX2(mul, _mm256_mul_ps(x, z))
SLIVER_VBINARY_AVX2(div, _mm256_div_ps(x, z))
SLIVER_VBINARY_AVX2(rdiv, _mm256_div_ps(z, x))
SLIVER_VBINARY_AVX2(max, nan_max(x, z))
SLIVER_VBINARY_AVX2(min, nan_min(x, z))

#undef SLIVER_VBINARY_AVX2

}  // namespace sliver
