// f32_wino2x2_3x3_scalar: the portable Winograd transforms (contract in f32_winograd.h), one
// tile at a time, tiles in the shared group order. The AVX2 kernels compute the same sums in
// the same order.
#include <cassert>
#include <cstdint>

#include "f32_winograd.h"

namespace sliver {

void f32_wino2x2_3x3_scalar_input(const F32WinoInputParams& p) {
  assert(p.n >= 0 && p.channels >= 0);
  for (int64_t c = 0; c < p.channels; ++c) {
    const float* xc = p.x + c * p.plane;
    for (int64_t t = 0; t < p.n; ++t) {
      float u[4][4];  // d B, row by row
      for (int r = 0; r < 4; ++r) {
        const int64_t ih = p.row0 + r, iw = p.col0 + 2 * t;
        float d[4];
        for (int k = 0; k < 4; ++k) {
          const bool in = ih >= 0 && ih < p.in_h && iw + k >= 0 && iw + k < p.in_w;
          d[k] = in ? xc[ih * p.ld + iw + k] : 0.f;
        }
        u[r][0] = d[0] - d[2];
        u[r][1] = d[1] + d[2];
        u[r][2] = d[2] - d[1];
        u[r][3] = d[1] - d[3];
      }
      float* v = p.v + c * p.v_c_stride + wino_tile_position(t, p.n);
      for (int j = 0; j < 4; ++j) {  // B^T (d B)
        v[(0 + j) * p.v_xi_stride] = u[0][j] - u[2][j];
        v[(4 + j) * p.v_xi_stride] = u[1][j] + u[2][j];
        v[(8 + j) * p.v_xi_stride] = u[2][j] - u[1][j];
        v[(12 + j) * p.v_xi_stride] = u[1][j] - u[3][j];
      }
    }
  }
}

void f32_wino2x2_3x3_scalar_output(const F32WinoOutputParams& p) {
  assert(p.rows >= 1 && p.rows <= 2 && p.cols <= 2 * p.n && p.cols >= 2 * p.n - 1);
  auto clamp = [](float v, float lo, float hi) {
    v = v > lo ? v : lo;  // NaN -> lo, as the vector kernels
    return v < hi ? v : hi;
  };
  for (int64_t t = 0; t < p.n; ++t) {
    float m[16];
    const int64_t at_m = wino_tile_position(t, p.n);
    for (int xi = 0; xi < 16; ++xi) m[xi] = p.m[xi * p.m_xi_stride + at_m];
    float y[2][2];
    f32_winograd_output_tile(m, y);
    for (int r = 0; r < p.rows; ++r) {
      for (int j = 0; j < 2 && 2 * t + j < p.cols; ++j) {
        const int64_t at = r * p.ldy + 2 * t + j;
        float v = y[r][j] + p.bias;
        if (p.act_clamp) v = clamp(v, p.act_lo, p.act_hi);
        if (p.residual) v += p.residual[at];
        if (p.post_clamp) v = clamp(v, p.post_lo, p.post_hi);
        p.y[at] = v;
      }
    }
  }
}

}  // namespace sliver
