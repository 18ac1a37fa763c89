// f32_dwconv_{3x3,kxk}_scalar: the portable twins of the depthwise row kernels.
#include <cassert>
#include <cstdint>

#include "f32_dwconv.h"

namespace sliver {
namespace {

// Accumulates tap by tap over the whole row (inner loops a compiler vectorises for stride 1).
template <int kTaps>
void row(int64_t n, int64_t s, int ntaps, const float* const* t, const float* w, float bias,
         float* y) {
  const int taps = kTaps ? kTaps : ntaps;
  for (int64_t j = 0; j < n; ++j) y[j] = bias;
  for (int k = 0; k < taps; ++k) {
    const float wk = w[k];
    const float* tk = t[k];
    if (s == 1) {
      for (int64_t j = 0; j < n; ++j) y[j] += wk * tk[j];
    } else {
      for (int64_t j = 0; j < n; ++j) y[j] += wk * tk[j * s];
    }
  }
}

}  // namespace

void f32_dwconv_3x3_scalar(int64_t n, int64_t stride, int ntaps, const float* const* t,
                           const float* w, float bias, float* y) {
  assert(ntaps == 9 && n >= 0 && stride >= 1);
  row<9>(n, stride, ntaps, t, w, bias, y);
}

void f32_dwconv_kxk_scalar(int64_t n, int64_t stride, int ntaps, const float* const* t,
                           const float* w, float bias, float* y) {
  assert(ntaps >= 1 && n >= 0 && stride >= 1);
  row<0>(n, stride, ntaps, t, w, bias, y);
}

}  // namespace sliver
