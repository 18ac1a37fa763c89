// q8_vbinary_scalar: the portable twin (and the definition the AVX2 kernel must match).
#include <cmath>
#include <cstdint>

#include "q8_vbinary.h"
#include "sliver/requant.h"

namespace sliver {
namespace {

inline float dequant(const uint8_t* x, bool is_signed, int32_t zp, float scale) {
  const int32_t c = is_signed ? int32_t{static_cast<int8_t>(*x)} : int32_t{*x};
  volatile float v = (static_cast<float>(c) - static_cast<float>(zp)) * scale;  // rounded here
  return v;
}

}  // namespace

void q8_vbinary_scalar(const Q8BinaryParams& p, int64_t n, const uint8_t* a, int64_t a_stride,
                       const uint8_t* b, int64_t b_stride, uint8_t* y) {
  const int32_t qmin = p.y_signed ? -128 : 0, qmax = qmin + 255;
  const float lo = static_cast<float>(qmin - p.y_zero_point);
  const float hi = static_cast<float>(qmax - p.y_zero_point);
  for (int64_t i = 0; i < n; ++i) {
    const float fa = dequant(a + i * a_stride, p.a_signed, p.a_zero_point, p.a_scale);
    const float fb = dequant(b + i * b_stride, p.b_signed, p.b_zero_point, p.b_scale);
    float v = 0.f;
    switch (p.op) {
      case Q8BinaryOp::add: v = fa + fb; break;
      case Q8BinaryOp::sub: v = fa - fb; break;
      case Q8BinaryOp::mul: v = fa * fb; break;
      case Q8BinaryOp::div: v = fa / fb; break;
      case Q8BinaryOp::max: v = fa > fb ? fa : fb; break;
      case Q8BinaryOp::min: v = fa < fb ? fa : fb; break;
    }
    float q = v / p.y_scale;
    q = q > lo ? q : lo;  // NaN -> lo
    q = q < hi ? q : hi;
    int32_t c = static_cast<int32_t>(round_half_even(static_cast<double>(q))) + p.y_zero_point;
    c = c < p.lo ? p.lo : (c > p.hi ? p.hi : c);
    y[i] = static_cast<uint8_t>(c);
  }
}

}  // namespace sliver
