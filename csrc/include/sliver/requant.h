// Requantization: int32 accumulator -> u8/s8 (QLinearConv, QLinearMatMul, fused Q after DQ-op).
//
// The integer part is exact; the float part is where runtimes disagree, so the operation order is
// part of the contract. Two orders are offered, both round half to even:
//
//  onnx_reference (default) -- bit-exact with onnx.reference's QLinearMatMul / QLinearConv:
//      m  = float32(float32(a_scale * b_scale[n]) / y_scale)        (float32, left to right)
//      d  = float64(acc) * float64(m)  then  d = d + float64(y_zero_point)   (two f64 roundings;
//           numpy promotes int32 * float32 to float64, and the add is a separate operation)
//      y  = clamp(round_half_even(d), qmin, qmax)
//  onnxruntime -- MLAS's MlasRequantizeOutput (what onnxruntime's CPU kernels do):
//      f  = float32(acc) * m   (float32; acc rounds to float32 when |acc| > 2^24)
//      f  = clamp(f, qmin - y_zero_point, qmax - y_zero_point)
//      y  = round_half_even(f) + y_zero_point
//  The two differ only when the exact product sits within a float32 ulp of a .5 tie.
//
// acc is the int32 sum plus the int32 bias (QLinearConv's B input), both wrapping mod 2^32 like
// the int32 arithmetic of the reference. [qmin, qmax] is the output type's range, narrowed by a
// fused Relu/Clip (e.g. Relu: qmin = y_zero_point). No fused multiply-add may contract d: the
// AVX2 code keeps the product opaque to the compiler.
//
// Float output (MatMulIntegerToFloat, a DequantizeLinear after MatMulInteger):
//      y = float32(acc) * float32(a_scale * b_scale[n])  then  + float_bias[n]   (float32)
#pragma once

#include <cmath>
#include <cstdint>

namespace sliver {

enum class RequantRounding : int {
  onnx_reference = 0,  // float64 product, see above
  onnxruntime = 1,     // float32 product, see above
};

/// Per-column multiplier for requantization, computed as the reference does (float32).
inline float requant_multiplier(float a_scale, float b_scale, float y_scale) {
  const float ab = a_scale * b_scale;
  return ab / y_scale;
}

/// Round half to even without depending on the FP environment's rounding mode.
inline double round_half_even(double x) {
  const double r = std::round(x);  // half away from zero
  if (std::fabs(x - std::trunc(x)) == 0.5) return 2.0 * std::round(x * 0.5);
  return r;
}

/// Reference requantization of one accumulator (the scalar kernels use exactly this).
inline int32_t requantize(int32_t acc, float multiplier, int32_t zero_point, int32_t qmin,
                          int32_t qmax, RequantRounding mode) {
  if (mode == RequantRounding::onnx_reference) {
    volatile double prod = static_cast<double>(acc) * static_cast<double>(multiplier);
    double d = prod + static_cast<double>(zero_point);
    d = std::fmin(std::fmax(d, static_cast<double>(qmin)), static_cast<double>(qmax));
    return static_cast<int32_t>(round_half_even(d));
  }
  volatile float prod = static_cast<float>(acc) * multiplier;
  float f = prod;
  f = std::fmin(std::fmax(f, static_cast<float>(qmin - zero_point)),
                static_cast<float>(qmax - zero_point));
  return static_cast<int32_t>(round_half_even(static_cast<double>(f))) + zero_point;
}

/// Reference dequantization of one accumulator to float.
inline float dequantize_acc(int32_t acc, float scale, const float* float_bias) {
  volatile float prod = static_cast<float>(acc) * scale;
  float y = prod;
  return float_bias ? y + *float_bias : y;
}

}  // namespace sliver
