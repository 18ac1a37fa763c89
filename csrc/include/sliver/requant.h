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

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

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

/// How a kernel may requantize a column (each form bit-identical to the onnx_reference order
/// for every accumulator the column can produce; see requant_form_for):
enum class RequantForm : int {
  full = 0,       // float64 product, float64 add, clamp, round half to even (as written above)
  short_f64 = 1,  // rne(fma64(acc, m, zp)): one rounding
  short_f32 = 2,  // fma32(float(acc), m, zp + 1.5 * 2^23): the float32 FMA itself rounds
};

/// The cheapest exact form for a column whose accumulators satisfy |acc| <= acc_bound.
///
/// Why the short forms are exact. m is a float32, m = M * 2^e with an integer |M| < 2^24. If
/// acc_bound * |M| < 2^53, every product acc * m is a float64 (an integer below 2^53 times a
/// power of two), so the reference's first rounding does nothing; if also the sum acc * m + zp
/// needs at most 53 bits (|acc * M| + |zp| * 2^-e < 2^53 for e < 0), its second rounding does
/// nothing either. The reference then rounds the exact value acc * m + zp half to even, once,
/// and clamping to integer bounds commutes with that rounding. short_f64 computes that with
/// one FMA (exact, so no rounding) and one conversion; it needs the result in int32.
/// short_f32 goes further: with |acc| < 2^24, float(acc) is exact, and a float32 FMA computes
/// acc * m + (zp + 1.5 * 2^23) exactly before rounding once -- at that magnitude float32 holds
/// only integers, so that one rounding IS the round half to even of acc * m + zp, and the
/// result's low bits are the integer (|acc * m + zp| < 2^22). Typical layers pass with a wide
/// margin (acc_bound ~ 2^20, e ~ -30); tiny or huge multipliers, NaN and huge biases or K take
/// the full order.
inline RequantForm requant_form_for(double acc_bound, float multiplier, int32_t zero_point) {
  if (!std::isfinite(multiplier) || !(acc_bound >= 0) || acc_bound >= 2147483648.0)
    return RequantForm::full;
  const double am = std::fabs(static_cast<double>(multiplier));
  const double zp = std::fabs(static_cast<double>(zero_point));
  if (multiplier != 0.f) {
    // |multiplier| = mant * 2^e, mant an integer below 2^24; read from the bits for normal
    // floats (frexp costs a library call per column, which small GEMMs pay on every run).
    uint32_t bits = 0;
    std::memcpy(&bits, &multiplier, sizeof bits);
    const int biased = static_cast<int>(bits >> 23 & 0xff);
    int e = 0;
    double mant = 0;
    if (biased != 0) {
      mant = static_cast<double>((bits & 0x7fffff) | 0x800000);
      e = biased - 150;
    } else {
      int ex = 0;
      mant = std::ldexp(std::frexp(am, &ex), 24);
      e = ex - 24;
    }
    constexpr double k2p52 = 4503599627370496.0;  // 2^52: a margin below 2^53 for the sums
    if (acc_bound * mant >= k2p52) return RequantForm::full;
    if (e < 0 &&
        (e < -60 || acc_bound * mant + zp * static_cast<double>(uint64_t{1} << -e) >= k2p52))
      return RequantForm::full;
    if (e >= 0 && acc_bound * am + zp >= k2p52) return RequantForm::full;
  }
  if (acc_bound * am + zp + 1.0 >= 2147483647.0) return RequantForm::full;
  if (acc_bound < 16777216.0 && acc_bound * am + zp + 1.0 < 4194304.0)  // 2^24, 2^22
    return RequantForm::short_f32;
  return RequantForm::short_f64;
}

/// Largest |x - zero_point| an 8-bit activation code can give (int8 when is_signed).
inline double max_centered_code(bool is_signed, int32_t zero_point) {
  const int32_t lo = is_signed ? -128 : 0;
  return std::max(zero_point - lo, lo + 255 - zero_point);
}

/// The cheapest form exact for every one of `columns` output columns of an 8-bit product, whose
/// accumulators are bounded by xmax * abssum[n] + |bias[n]| (xmax from max_centered_code,
/// abssum[n] = sum_k |w - w_zp|, bias may be null); multiplier[n] per column. The form only
/// gets cheaper as the bound falls, so when every column shares one multiplier (per-tensor
/// weights) the largest bound decides in one call: requant_form_for costs tens of nanoseconds,
/// which small products pay on every run.
inline RequantForm requant_form_for_columns(int64_t columns, const int64_t* abssum,
                                            const int32_t* bias, double xmax,
                                            const float* multiplier, int32_t zero_point) {
  auto bound = [&](int64_t n) {
    return xmax * static_cast<double>(abssum[n]) +
           (bias ? std::fabs(static_cast<double>(bias[n])) : 0.0);
  };
  if (columns <= 0) return RequantForm::short_f32;
  if (std::all_of(multiplier, multiplier + columns, [&](float m) { return m == multiplier[0]; })) {
    double b = 0;
    for (int64_t n = 0; n < columns; ++n) b = std::max(b, bound(n));
    return requant_form_for(b, multiplier[0], zero_point);
  }
  RequantForm form = RequantForm::short_f32;
  for (int64_t n = 0; n < columns && form != RequantForm::full; ++n)
    form = std::min(form, requant_form_for(bound(n), multiplier[n], zero_point));
  return form;
}

/// Per-call output parameters of the 8-bit conv kernels (wconv and depthwise), per column.
struct Q8ConvRequant {
  const int32_t* col_term = nullptr;     // [columns, padded to 16] added to every sum
  const double* multiplier = nullptr;    // [columns, padded to 16] float32 multipliers, widened
  const float* multiplier_f32 = nullptr; // the same, as float32
  int32_t y_zero_point = 0;
  int32_t qmin = 0, qmax = 255;  // clamp, inside the output type
  bool y_signed = false;         // int8 output (else uint8)
  RequantForm form = RequantForm::full;  // the cheapest form exact for every column
};

/// Reference dequantization of one accumulator to float.
inline float dequantize_acc(int32_t acc, float scale, const float* float_bias) {
  volatile float prod = static_cast<float>(acc) * scale;
  float y = prod;
  return float_bias ? y + *float_bias : y;
}

}  // namespace sliver
