// FP32 elementwise binary kernels, one ISA per source file.
//
// f32_v<op>_vv_<isa>(n, a, b, y): y[i] = a[i] op b[i]; f32_v<op>_vs_<isa>(n, a, b, y):
// y[i] = a[i] op b[0]. Exactly n floats are read from a (and b for vv) and written to y; y may be
// a or b (in place), partial overlap is not allowed. Max and min propagate NaN like numpy.
#pragma once

#include <cstdint>
#include <string>

namespace sliver {

using F32VBinaryFn = void (*)(int64_t n, const float* a, const float* b, float* y);

enum class VBinary : int {
#define SLIVER_F32_VBINARY(op) op,
#include "f32_vbinary.inc"
#undef SLIVER_F32_VBINARY
  count
};

#define SLIVER_F32_VBINARY(op)                                                     \
  void f32_v##op##_vv_scalar(int64_t n, const float* a, const float* b, float* y); \
  void f32_v##op##_vs_scalar(int64_t n, const float* a, const float* b, float* y);
#include "f32_vbinary.inc"
#undef SLIVER_F32_VBINARY
#if defined(__x86_64__) || defined(_M_X64)
#define SLIVER_F32_VBINARY(op)                                                   \
  void f32_v##op##_vv_avx2(int64_t n, const float* a, const float* b, float* y); \
  void f32_v##op##_vs_avx2(int64_t n, const float* a, const float* b, float* y);
#include "f32_vbinary.inc"
#undef SLIVER_F32_VBINARY
#endif

struct F32VBinaryKernels {
  F32VBinaryFn vv, vs;
};

/// The kernels for `op` on this CPU (AVX2 when usable, else scalar).
const F32VBinaryKernels& f32_vbinary(VBinary op);
/// The kernels for `op` of a given ISA, or nullptr if not compiled or not usable.
const F32VBinaryKernels* f32_vbinary_of(VBinary op, const std::string& isa);

}  // namespace sliver
