// f32_gemm_4x8_scalar: the portable twin of the SIMD kernels, built everywhere.
//
// Same contract and the same accumulation order per element (one running sum over k per K block)
// as the SIMD kernels, but with the reference activations from gemm.h; written so that a compiler
// can vectorise the 8-wide rows with whatever baseline ISA it has.
#include <cassert>
#include <cstdint>

#include "sliver/gemm.h"

namespace sliver {
namespace {

constexpr int kMR = 4;
constexpr int kNR = 8;

template <bool kAPacked>
void tile(const F32GemmUkernelArgs& p, int64_t q, int64_t nr) {
  const int64_t mr = p.mr, kc = p.kc;
  const float* b = p.b + q * p.b_panel_stride;
  float acc[kMR][kNR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const float* __restrict brow = b + k * p.b_k_stride;
    for (int64_t i = 0; i < mr; ++i) {
      const float av = kAPacked ? p.a[k * kMR + i] : p.a[i * p.a_row_stride + k];
      for (int j = 0; j < kNR; ++j) acc[i][j] += av * brow[j];
    }
  }
  const Epilogue* ep = p.ep;
  for (int64_t i = 0; i < mr; ++i) {
    float* crow = p.c + i * p.ldc + q * kNR;
    for (int64_t j = 0; j < nr; ++j) {
      float x = acc[i][j];
      if (p.c_scale != 0.f) x += p.c_scale * crow[j];
      if (ep) {
        if (p.bias) x += ep->bias_per_row ? p.bias[i] : p.bias[q * kNR + j];
        x = apply_act(ep->act, x, ep->alpha, ep->beta);
        if (p.residual) x += p.residual[i * ep->ld_residual + q * kNR + j];
        x = apply_act(ep->post_act, x, ep->post_alpha, ep->post_beta);
      }
      crow[j] = x;
    }
  }
}

template <bool kAPacked>
void tiles(const F32GemmUkernelArgs& p) {
  for (int64_t q = 0; q < p.panels; ++q) tile<kAPacked>(p, q, q + 1 < p.panels ? kNR : p.nr);
}

}  // namespace

void f32_gemm_4x8_scalar(const F32GemmUkernelArgs& p) {
  assert(p.mr >= 1 && p.mr <= kMR && p.nr >= 1 && p.nr <= kNR && p.kc >= 0 && p.panels >= 1);
  assert(p.b_k_stride >= kNR || p.kc <= 1);
  if (p.a_row_stride == 0)
    tiles<true>(p);
  else
    tiles<false>(p);
}

}  // namespace sliver
