// f32_v<op>_{vv,vs}_scalar: the portable twins of the binary kernels.
#include <cassert>
#include <cstdint>

#include "f32_vbinary.h"

namespace sliver {
namespace {
// NaN in either operand gives NaN (numpy's maximum/minimum).
inline float nan_max(float a, float b) { return a != a || a > b ? a : b; }
inline float nan_min(float a, float b) { return a != a || a < b ? a : b; }
}  // namespace

#define SLIVER_VBINARY_SCALAR(op, expr)                                             \
  void f32_v##op##_vv_scalar(int64_t n, const float* a, const float* b, float* y) { \
    assert(n >= 0);                                                                 \
    for (int64_t i = 0; i < n; ++i) {                                               \
      const float x = a[i], z = b[i];                                               \
      y[i] = (expr);                                                                \
    }                                                                               \
  }                                                                                 \
  void f32_v##op##_vs_scalar(int64_t n, const float* a, const float* b, float* y) { \
    assert(n >= 0);                                                                 \
    const float z = b[0];                                                           \
    for (int64_t i = 0; i < n; ++i) {                                               \
      const float x = a[i];                                                         \
      y[i] = (expr);                                                                \
    }                                                                               \
  }

SLIVER_VBINARY_SCALAR(add, x + z)
SLIVER_VBINARY_SCALAR(sub, x - z)
SLIVER_VBINARY_SCALAR(rsub, z - x)
SLIVER_VBINARY_SCALAR(mul, x * z)
SLIVER_VBINARY_SCALAR(div, x / z)
SLIVER_VBINARY_SCALAR(rdiv, z / x)
SLIVER_VBINARY_SCALAR(max, nan_max(x, z))
SLIVER_VBINARY_SCALAR(min, nan_min(x, z))

#undef SLIVER_VBINARY_SCALAR

}  // namespace sliver
