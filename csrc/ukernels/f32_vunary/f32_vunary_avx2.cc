// f32_v<op>_avx2: the unary kernels of f32_vunary.inc, 8 floats per step, masked tail.
#include <immintrin.h>

#include <cassert>
#include <cstdint>

#include "f32_vmath_avx2.h"
#include "f32_vunary.h"

namespace sliver {
namespace {

using namespace vmath_avx2;

// Runs f over n floats: two vectors per step (independent chains for the long polynomials), then
// one, then a masked tail that neither reads nor writes past n.
template <class F>
inline void map(int64_t n, const float* x, float* y, F f) {
  assert(n >= 0);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 a = f(_mm256_loadu_ps(x + i)), b = f(_mm256_loadu_ps(x + i + 8));
    _mm256_storeu_ps(y + i, a);
    _mm256_storeu_ps(y + i + 8, b);
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n - i)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_maskstore_ps(y + i, mask, f(_mm256_maskload_ps(x + i, mask)));
  }
}

}  // namespace

#define SLIVER_VUNARY_AVX2(op, expr)                                                          \
  void f32_v##op##_avx2(int64_t n, const float* x, float* y, const F32VUnaryParams& prm) {    \
    const __m256 alpha = _mm256_set1_ps(prm.alpha), beta = _mm256_set1_ps(prm.beta);          \
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.f);                       \
    (void)alpha, (void)beta, (void)zero, (void)one;                                           \
    map(n, x, y, [&](__m256 v) { return expr; });                                             \
  }

// max(v, 0) with v first: a NaN input stays NaN (max returns its second operand on NaN).
SLIVER_VUNARY_AVX2(relu, _mm256_max_ps(zero, v))
SLIVER_VUNARY_AVX2(leaky_relu,
                   _mm256_blendv_ps(v, _mm256_mul_ps(v, alpha), _mm256_cmp_ps(v, zero, _CMP_LT_OQ)))
SLIVER_VUNARY_AVX2(clip, _mm256_min_ps(beta, _mm256_max_ps(alpha, v)))
SLIVER_VUNARY_AVX2(sigmoid, sigmoid_ps(v))
SLIVER_VUNARY_AVX2(tanh, tanh_ps(v))
SLIVER_VUNARY_AVX2(hard_sigmoid,
                   _mm256_max_ps(zero, _mm256_min_ps(one, _mm256_fmadd_ps(alpha, v, beta))))
SLIVER_VUNARY_AVX2(hard_swish,
                   _mm256_mul_ps(v, _mm256_max_ps(zero, _mm256_min_ps(one, _mm256_fmadd_ps(
                                                                              alpha, v, beta)))))
SLIVER_VUNARY_AVX2(erf, erf_ps(v))
SLIVER_VUNARY_AVX2(gelu_erf, gelu_erf_ps(v))
SLIVER_VUNARY_AVX2(gelu_tanh, gelu_tanh_ps(v))
SLIVER_VUNARY_AVX2(exp, exp_ps(v))
SLIVER_VUNARY_AVX2(exp_shift, exp_ps(_mm256_add_ps(v, alpha)))
SLIVER_VUNARY_AVX2(log, log_ps(v))
SLIVER_VUNARY_AVX2(sqrt, _mm256_sqrt_ps(v))
SLIVER_VUNARY_AVX2(neg, _mm256_xor_ps(v, _mm256_set1_ps(-0.f)))
SLIVER_VUNARY_AVX2(abs, absv(v))
SLIVER_VUNARY_AVX2(reciprocal, _mm256_div_ps(one, v))
// expm1 would be more accurate near 0 from below, but exp(x) - 1 loses only absolute 1e-7 there.
SLIVER_VUNARY_AVX2(elu, _mm256_blendv_ps(v, _mm256_mul_ps(alpha, _mm256_sub_ps(exp_ps(v), one)),
                                         _mm256_cmp_ps(v, zero, _CMP_LT_OQ)))
// log(1 + e^x) = max(x, 0) + log(1 + e^-|x|): no overflow for large x.
SLIVER_VUNARY_AVX2(softplus,
                   _mm256_add_ps(_mm256_max_ps(zero, v),
                                 log_ps(_mm256_add_ps(one, exp_ps(_mm256_sub_ps(zero, absv(v)))))))
SLIVER_VUNARY_AVX2(affine, _mm256_fmadd_ps(alpha, v, beta))

#undef SLIVER_VUNARY_AVX2

}  // namespace sliver
