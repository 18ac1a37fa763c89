// f32_v<op>_avx512: the unary kernels of f32_vunary.inc, 16 floats per step, masked tail; the
// math of f32_vmath_avx512.h (f32_vmath_avx2.h's formulas on zmm).
#include <immintrin.h>

#include <cassert>
#include <cstdint>

#include "f32_vmath_avx512.h"
#include "f32_vunary.h"

namespace sliver {
namespace {

using namespace vmath_avx512;

// Runs f over n floats: two vectors per step (independent chains for the long polynomials), then
// one, then a masked tail that neither reads nor writes past n.
template <class F>
inline void map(int64_t n, const float* x, float* y, F f) {
  assert(n >= 0);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 a = f(_mm512_loadu_ps(x + i)), b = f(_mm512_loadu_ps(x + i + 16));
    _mm512_storeu_ps(y + i, a);
    _mm512_storeu_ps(y + i + 16, b);
  }
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(y + i, m, f(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

inline __mmask16 below_zero(__m512 v) {
  return _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
}

}  // namespace

#define SLIVER_VUNARY_AVX512(op, expr)                                                        \
  void f32_v##op##_avx512(int64_t n, const float* x, float* y, const F32VUnaryParams& prm) {  \
    const __m512 alpha = _mm512_set1_ps(prm.alpha), beta = _mm512_set1_ps(prm.beta);          \
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.f);                       \
    (void)alpha, (void)beta, (void)zero, (void)one;                                           \
    map(n, x, y, [&](__m512 v) { return expr; });                                             \
  }

// max(v, 0) with v first: a NaN input stays NaN (max returns its second operand on NaN).
SLIVER_VUNARY_AVX512(relu, _mm512_max_ps(zero, v))
SLIVER_VUNARY_AVX512(leaky_relu, _mm512_mask_blend_ps(below_zero(v), v, _mm512_mul_ps(v, alpha)))
SLIVER_VUNARY_AVX512(clip, _mm512_min_ps(beta, _mm512_max_ps(alpha, v)))
SLIVER_VUNARY_AVX512(sigmoid, sigmoid_ps(v))
SLIVER_VUNARY_AVX512(tanh, tanh_ps(v))
SLIVER_VUNARY_AVX512(hard_sigmoid,
                     _mm512_max_ps(zero, _mm512_min_ps(one, _mm512_fmadd_ps(alpha, v, beta))))
SLIVER_VUNARY_AVX512(hard_swish,
                     _mm512_mul_ps(v, _mm512_max_ps(zero, _mm512_min_ps(one, _mm512_fmadd_ps(
                                                                                alpha, v, beta)))))
SLIVER_VUNARY_AVX512(erf, erf_ps(v))
SLIVER_VUNARY_AVX512(gelu_erf, gelu_erf_ps(v))
SLIVER_VUNARY_AVX512(gelu_tanh, gelu_tanh_ps(v))
SLIVER_VUNARY_AVX512(exp, exp_ps(v))
SLIVER_VUNARY_AVX512(exp_shift, exp_ps(_mm512_add_ps(v, alpha)))
SLIVER_VUNARY_AVX512(log, log_ps(v))
SLIVER_VUNARY_AVX512(sqrt, _mm512_sqrt_ps(v))
SLIVER_VUNARY_AVX512(neg, _mm512_xor_ps(v, _mm512_set1_ps(-0.f)))
SLIVER_VUNARY_AVX512(abs, absv(v))
SLIVER_VUNARY_AVX512(reciprocal, _mm512_div_ps(one, v))
// expm1 would be more accurate near 0 from below, but exp(x) - 1 loses only absolute 1e-7 there.
SLIVER_VUNARY_AVX512(elu, _mm512_mask_blend_ps(below_zero(v), v,
                                               _mm512_mul_ps(alpha, _mm512_sub_ps(exp_ps(v), one))))
// log(1 + e^x) = max(x, 0) + log(1 + e^-|x|): no overflow for large x.
SLIVER_VUNARY_AVX512(softplus,
                     _mm512_add_ps(_mm512_max_ps(zero, v),
                                   log_ps(_mm512_add_ps(one, exp_ps(_mm512_sub_ps(zero, absv(v)))))))
SLIVER_VUNARY_AVX512(affine, _mm512_fmadd_ps(alpha, v, beta))

#undef SLIVER_VUNARY_AVX512

}  // namespace sliver
