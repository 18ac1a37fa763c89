// f32_dwconv_c8_3x3s{1,2}_scalar: the portable twins of the channel-blocked depthwise kernels
// (contract in f32_dwconv.h): each channel of the block through the scalar plane kernel.
#include <cstdint>

#include "f32_dwconv.h"

namespace sliver {
namespace {

void per_channel(const F32DwconvC8Params& p, F32Dwconv2dFn plane) {
  const float* zero = p.scratch;  // in_w zeros for the rows outside the plane
  for (int64_t i = 0; i < p.in_w; ++i) p.scratch[i] = 0.f;
  F32Dwconv2dParams q{};
  q.in_h = p.in_h;
  q.in_w = p.in_w;
  q.zero = zero;
  q.out_h = p.out_h;
  q.out_w = p.out_w;
  q.pad_top = p.pad_top;
  q.pad_left = p.pad_left;
  q.clamp = p.clamp;
  q.lo = p.lo;
  q.hi = p.hi;
  float w[9];
  q.w = w;
  for (int c = 0; c < p.nc; ++c) {
    for (int t = 0; t < 9; ++t) w[t] = p.w[8 * t + c];  // lane c of the tap-major block
    q.x = p.x + c * p.x_stride;
    q.y = p.y + c * p.y_stride;
    q.bias = p.bias ? p.bias[c] : 0.f;
    plane(q);
  }
}

}  // namespace

void f32_dwconv_c8_3x3s1_scalar(const F32DwconvC8Params& p) {
  per_channel(p, f32_dwconv2d_3x3s1_scalar);
}
void f32_dwconv_c8_3x3s2_scalar(const F32DwconvC8Params& p) {
  per_channel(p, f32_dwconv2d_3x3s2_scalar);
}

}  // namespace sliver
