// f32_dwconv_{3x3,kxk}_scalar: the portable twins of the depthwise row kernels.
#include <cassert>
#include <cstdint>

#include "f32_dwconv.h"

namespace sliver {
namespace {

// Accumulates tap by tap over the whole row (unit-stride inner loops a compiler vectorises).
template <int kTaps>
void row(int64_t n, int ntaps, const float* const* t, const float* w, float bias, float* y) {
  const int taps = kTaps ? kTaps : ntaps;
  for (int64_t j = 0; j < n; ++j) y[j] = bias;
  for (int k = 0; k < taps; ++k) {
    const float wk = w[k];
    const float* tk = t[k];
    for (int64_t j = 0; j < n; ++j) y[j] += wk * tk[j];
  }
}

}  // namespace

void f32_dwconv_3x3_scalar(int64_t n, int ntaps, const float* const* t, const float* w, float bias,
                           float* y) {
  assert(ntaps == 9 && n >= 0);
  row<9>(n, ntaps, t, w, bias, y);
}

void f32_dwconv_kxk_scalar(int64_t n, int ntaps, const float* const* t, const float* w, float bias,
                           float* y) {
  assert(ntaps >= 1 && n >= 0);
  row<0>(n, ntaps, t, w, bias, y);
}

}  // namespace sliver
