// FP32 elementwise unary kernels (activations and math functions), one ISA per source file.
//
// Contract of every f32_v<op>_<isa>(n, x, y, p): y[i] = op(x[i]) for i < n; reads exactly n
// floats of x and writes exactly n of y (tails are masked, never over-read); x == y (in place) is
// allowed, partial overlap is not. The SIMD versions use the polynomial approximations documented
// in f32_vmath_avx2.h; their largest relative error against float64 is a named constant there,
// checked by tests/test_native_ops.py. The _scalar twins call the C library.
#pragma once

#include <cstdint>
#include <string>

namespace sliver {

struct F32VUnaryParams {
  float alpha = 0.f, beta = 0.f;  // per-op meaning: see f32_vunary.inc
};

using F32VUnaryFn = void (*)(int64_t n, const float* x, float* y, const F32VUnaryParams& p);

enum class VUnary : int {
#define SLIVER_F32_VUNARY(op) op,
#include "f32_vunary.inc"
#undef SLIVER_F32_VUNARY
  count
};

#define SLIVER_F32_VUNARY(op) \
  void f32_v##op##_scalar(int64_t n, const float* x, float* y, const F32VUnaryParams& p);
#include "f32_vunary.inc"
#undef SLIVER_F32_VUNARY
#if defined(__x86_64__) || defined(_M_X64)
#define SLIVER_F32_VUNARY(op)                                                              \
  void f32_v##op##_avx2(int64_t n, const float* x, float* y, const F32VUnaryParams& p); \
  void f32_v##op##_avx512(int64_t n, const float* x, float* y, const F32VUnaryParams& p);
#include "f32_vunary.inc"
#undef SLIVER_F32_VUNARY
#endif

/// The kernel for `op` on this CPU (AVX-512, else AVX2 when usable, else scalar).
F32VUnaryFn f32_vunary(VUnary op);
/// The kernel for `op` of a given ISA ("avx512", "avx2", "scalar"), or nullptr if not compiled or
/// usable.
F32VUnaryFn f32_vunary_of(VUnary op, const std::string& isa);
/// The ISA whose unary kernels f32_vunary() returns.
const char* f32_vunary_isa();

}  // namespace sliver
