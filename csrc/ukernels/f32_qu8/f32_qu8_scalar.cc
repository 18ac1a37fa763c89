// f32_qu8 scalar twins: the definition the vector kernels match.
#include <cstdint>

#include "f32_qu8.h"
#include "sliver/requant.h"

namespace sliver {

void f32_minmax_scalar(const float* x, int64_t n, float* lo, float* hi, bool* nan) {
  float l = 0.f, h = 0.f;
  bool bad = false;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    bad |= v != v;
    l = v < l ? v : l;
    h = v > h ? v : h;
  }
  *lo = l;
  *hi = h;
  *nan = bad;
}

void f32_qu8_quantize_scalar(const float* x, int64_t n, float scale, int32_t zp, uint8_t* y) {
  const float lo = static_cast<float>(0 - zp), hi = static_cast<float>(255 - zp);
  for (int64_t i = 0; i < n; ++i) {
    volatile float q = x[i] / scale;  // a float32 division, rounded here
    float v = q;
    v = v > lo ? v : lo;  // NaN -> lo
    v = v < hi ? v : hi;
    y[i] = static_cast<uint8_t>(static_cast<int32_t>(round_half_even(v)) + zp);
  }
}

}  // namespace sliver
