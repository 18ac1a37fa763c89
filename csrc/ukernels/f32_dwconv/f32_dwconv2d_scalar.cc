// f32_dwconv2d_{3x3,5x5}s{1,2}_scalar: the portable twins of the depthwise plane kernels
// (contract in f32_dwconv.h), and their reference: one output at a time, taps outside the plane
// skipped.
#include <cassert>
#include <cstdint>

#include "f32_dwconv.h"

namespace sliver {
namespace {

template <int K, int S>
void plane(const F32Dwconv2dParams& p) {
  assert(p.pad_top >= 0 && p.pad_top < K && p.pad_left >= 0 && p.pad_left < K);
  for (int64_t oh = 0; oh < p.out_h; ++oh) {
    for (int64_t ow = 0; ow < p.out_w; ++ow) {
      float acc = p.bias;
      for (int i = 0; i < K; ++i) {
        const int64_t ih = oh * S - p.pad_top + i;
        if (ih < 0 || ih >= p.in_h) continue;
        for (int j = 0; j < K; ++j) {
          const int64_t iw = ow * S - p.pad_left + j;
          if (iw >= 0 && iw < p.in_w) acc += p.w[i * K + j] * p.x[ih * p.in_w + iw];
        }
      }
      if (p.clamp) {
        acc = acc > p.lo ? acc : p.lo;  // NaN -> lo, as the vector kernels
        acc = acc < p.hi ? acc : p.hi;
      }
      p.y[oh * p.out_w + ow] = acc;
    }
  }
}

}  // namespace

void f32_dwconv2d_3x3s1_scalar(const F32Dwconv2dParams& p) { plane<3, 1>(p); }
void f32_dwconv2d_3x3s2_scalar(const F32Dwconv2dParams& p) { plane<3, 2>(p); }
void f32_dwconv2d_5x5s1_scalar(const F32Dwconv2dParams& p) { plane<5, 1>(p); }
void f32_dwconv2d_5x5s2_scalar(const F32Dwconv2dParams& p) { plane<5, 2>(p); }

}  // namespace sliver
