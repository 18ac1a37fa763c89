// f32_v<op>_scalar: the portable twins of the unary kernels, on the C library's math functions.
#include <cassert>
#include <cmath>
#include <cstdint>

#include "f32_vunary.h"

namespace sliver {

#define SLIVER_VUNARY_SCALAR(op, expr)                                                     \
  void f32_v##op##_scalar(int64_t n, const float* x, float* y, const F32VUnaryParams& p) { \
    assert(n >= 0);                                                                        \
    const float alpha = p.alpha, beta = p.beta;                                            \
    (void)alpha, (void)beta;                                                               \
    for (int64_t i = 0; i < n; ++i) {                                                      \
      const float v = x[i];                                                                \
      y[i] = (expr);                                                                       \
    }                                                                                      \
  }

namespace {
inline float sigmoid(float v) {
  const float e = std::exp(-std::fabs(v));
  return v >= 0 ? 1.f / (1.f + e) : e / (1.f + e);
}
inline float hard_sigmoid(float v, float a, float b) {
  return std::fmax(0.f, std::fmin(1.f, a * v + b));
}
}  // namespace

SLIVER_VUNARY_SCALAR(relu, v < 0.f ? 0.f : v)
SLIVER_VUNARY_SCALAR(leaky_relu, v < 0.f ? alpha * v : v)
SLIVER_VUNARY_SCALAR(clip, v != v ? v : std::fmin(beta, std::fmax(alpha, v)))
SLIVER_VUNARY_SCALAR(sigmoid, v != v ? v : sigmoid(v))
SLIVER_VUNARY_SCALAR(tanh, std::tanh(v))
SLIVER_VUNARY_SCALAR(hard_sigmoid, hard_sigmoid(v, alpha, beta))
SLIVER_VUNARY_SCALAR(hard_swish, v * hard_sigmoid(v, alpha, beta))
SLIVER_VUNARY_SCALAR(erf, std::erf(v))
// For negative x, 1 + erf(z) = erfc(-z) avoids the cancellation; double keeps z = x / sqrt 2
// exact enough for erfc's far tail.
SLIVER_VUNARY_SCALAR(gelu_erf,
                     static_cast<float>(0.5 * v * std::erfc(-v * 0.70710678118654752440)))
SLIVER_VUNARY_SCALAR(gelu_tanh,
                     v * sigmoid(2.f * 0.79788456080286536f * (v + 0.044715f * v * v * v)))
SLIVER_VUNARY_SCALAR(exp, std::exp(v))
SLIVER_VUNARY_SCALAR(exp_shift, std::exp(v + alpha))
SLIVER_VUNARY_SCALAR(log, std::log(v))
SLIVER_VUNARY_SCALAR(sqrt, std::sqrt(v))
SLIVER_VUNARY_SCALAR(neg, -v)
SLIVER_VUNARY_SCALAR(abs, std::fabs(v))
SLIVER_VUNARY_SCALAR(reciprocal, 1.f / v)
SLIVER_VUNARY_SCALAR(elu, v < 0.f ? alpha * std::expm1(v) : v)
SLIVER_VUNARY_SCALAR(softplus, std::fmax(v, 0.f) + std::log1p(std::exp(-std::fabs(v))))
SLIVER_VUNARY_SCALAR(affine, alpha * v + beta)

#undef SLIVER_VUNARY_SCALAR

}  // namespace sliver
