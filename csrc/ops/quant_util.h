// Shared pieces of the quantized operators: reading scales and zero points, and the float32
// quantize step exactly as MLAS (onnxruntime) and onnx.reference both do it.
//
// Quantize: v = x / scale (a float32 division, not a multiply by 1/scale: the two round
// differently), clamp v to [qmin - zp, qmax - zp] with NaN going to the low end, round half to
// even, add zp. Clamping before rounding equals rounding then saturating because the bounds are
// integers, and it keeps the float -> int conversion in range.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ops/common.h"
#include "sliver/kernel.h"
#include "sliver/tensor.h"

namespace sliver::ops::q {

template <class T>
constexpr int32_t qmin() {
  return static_cast<int32_t>(std::numeric_limits<T>::lowest());
}
template <class T>
constexpr int32_t qmax() {
  return static_cast<int32_t>(std::numeric_limits<T>::max());
}

inline bool is_q8(DType t) { return t == DType::u8 || t == DType::i8; }

/// Returns v unchanged, but as a value the compiler must have rounded to float: it cannot fuse
/// the multiply that produced v with a later add (-ffp-contract=fast does that wherever FMA
/// instructions exist, e.g. aarch64 or -mfma files), which would change results at ties.
/// Free where no FMA is available (baseline x86-64), so loops still vectorize there.
template <class F>
inline F opaque(F v) {  // float or double
#if defined(__GNUC__) && (defined(__FMA__) || defined(__aarch64__))
#if defined(__aarch64__)
  __asm__("" : "+w"(v));
#else
  __asm__("" : "+x"(v));
#endif
#endif
  return v;
}

/// Round half to even for |v| < 2^22 without a libm call (baseline x86-64 has no roundss):
/// adding 1.5 * 2^23 makes the float addition itself round to an integer (default rounding
/// mode). Compiled without -ffast-math, so the compiler may not re-associate it away.
inline float round_even_small(float v) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (opaque(v) + kMagic) - kMagic;
}

/// MLAS's QuantizeLinear of one value (see the file comment).
template <class T>
inline T quantize_one(float x, float scale, int32_t zp) {
  float v = x / scale;
  const float lo = static_cast<float>(qmin<T>() - zp), hi = static_cast<float>(qmax<T>() - zp);
  v = v > lo ? v : lo;  // NaN -> lo
  v = v < hi ? v : hi;
  return static_cast<T>(static_cast<int32_t>(round_even_small(v)) + zp);
}

/// Element 0 of a float32 tensor (scales).
inline float scalar_f32(const Tensor& t, const char* what) {
  if (t.dtype != DType::f32) fail(what, " must be float32, got ", dtype_name(t.dtype));
  if (t.numel() < 1) fail(what, " is empty");
  return t.ptr<float>()[0];
}

/// Element 0 of an integer zero-point tensor (0 when absent).
inline int32_t scalar_zp(const Tensor* t, const char* what) {
  if (!t) return 0;
  if (t->numel() < 1) fail(what, " is empty");
  switch (t->dtype) {
    case DType::u8: return t->ptr<uint8_t>()[0];
    case DType::i8: return t->ptr<int8_t>()[0];
    case DType::u16: return t->ptr<uint16_t>()[0];
    case DType::i16: return t->ptr<int16_t>()[0];
    case DType::i32: return t->ptr<int32_t>()[0];
    default: fail(what, " has unsupported dtype ", dtype_name(t->dtype));
  }
}

/// All values of a zero-point tensor as int32 (per-axis zero points).
inline std::vector<int32_t> zp_values(const Tensor* t, int64_t n, const char* what) {
  std::vector<int32_t> v(static_cast<size_t>(n), 0);
  if (!t) return v;
  if (t->numel() != n && t->numel() != 1)
    fail(what, " has ", t->numel(), " values, expected 1 or ", n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = t->numel() == 1 ? 0 : i;
    switch (t->dtype) {
      case DType::u8: v[i] = t->ptr<uint8_t>()[j]; break;
      case DType::i8: v[i] = t->ptr<int8_t>()[j]; break;
      case DType::i32: v[i] = t->ptr<int32_t>()[j]; break;
      default: fail(what, " has unsupported dtype ", dtype_name(t->dtype));
    }
  }
  return v;
}

/// A constant zero-point input's values ({0} when the input is missing): what packing takes.
inline std::vector<int32_t> zp_list(const Tensor* t, const char* what) {
  return t ? zp_values(t, t->numel(), what) : std::vector<int32_t>{0};
}

/// All values of a float32 scale tensor, 1 or n of them, broadcast to n.
inline std::vector<float> scale_values(const Tensor& t, int64_t n, const char* what) {
  if (t.dtype != DType::f32) fail(what, " must be float32, got ", dtype_name(t.dtype));
  if (t.numel() != n && t.numel() != 1)
    fail(what, " has ", t.numel(), " values, expected 1 or ", n);
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = t.ptr<float>()[t.numel() == 1 ? 0 : i];
  return v;
}

/// Whether input i is absent or a constant (so tables can be built at creation).
inline bool const_or_missing(const KernelInit& init, int i) {
  return !init.has_input(i) || init.is_const(i);
}

/// The constant tensor at input i, or nullptr when the input is missing.
inline const Tensor* const_input(const KernelInit& init, int i) {
  return init.has_input(i) && init.is_const(i) ? &init.const_inputs[i] : nullptr;
}

/// The dtype an 8-bit quantized operand has, from its static dtype or else its zero point's.
inline DType q8_dtype(const KernelInit& init, int data, int zero_point) {
  DType t = in_dtype(init, data);
  if (t == DType::undefined && init.has_input(zero_point)) t = in_dtype(init, zero_point);
  if (t == DType::undefined && init.is_const(zero_point)) t = init.const_inputs[zero_point].dtype;
  return t;
}

}  // namespace sliver::ops::q
