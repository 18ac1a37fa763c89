// Dynamic quantization of float32 to uint8 (DynamicQuantizeLinear's formula), as two passes:
//
//   f32_minmax:        lo = min(0, x...), hi = max(0, x...) with the scalar loop's semantics
//                      (lo = v < lo ? v : lo), and whether any x is NaN
//   f32_qu8_quantize:  y = saturate(round_half_even(x / scale) + zp), the float32 division and the
//                      clamp-before-round of QuantizeLinear (ops/quant_util.h quantize_one)
//
// The vector kernels give the scalar twins' results bit for bit (min/max of finite values does
// not depend on the order; the division and rounding are IEEE per element).
#pragma once

#include <cstdint>
#include <string>

namespace sliver {

using F32MinMaxFn = void (*)(const float* x, int64_t n, float* lo, float* hi, bool* nan);
using F32QU8QuantizeFn = void (*)(const float* x, int64_t n, float scale, int32_t zp, uint8_t* y);

struct F32QU8Kernels {
  const char* isa;
  F32MinMaxFn minmax;
  F32QU8QuantizeFn quantize;
};

#define SLIVER_F32_QU8_KERNELS(isa)                                                        \
  void f32_minmax_##isa(const float* x, int64_t n, float* lo, float* hi, bool* nan);      \
  void f32_qu8_quantize_##isa(const float* x, int64_t n, float scale, int32_t zp, uint8_t* y);
#include "f32_qu8.inc"
#undef SLIVER_F32_QU8_KERNELS

/// The best usable pair on this CPU.
const F32QU8Kernels& f32_qu8_kernels();
/// The pair compiled for this ISA ("avx2", "scalar"), or nullptr (tests; check isa_usable).
const F32QU8Kernels* find_f32_qu8_kernels(const std::string& isa);

}  // namespace sliver
