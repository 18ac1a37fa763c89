// f32_spmm_<NT>x<R>_scalar: portable twins of the AVX2 sparse-weight kernels (same contract, see
// sparse.h), the FP32 panel packers and the tile transpose. Sums run entry by entry in storage
// order, so results differ from the AVX2 kernels' (which split entries over accumulator sets)
// only by float rounding.
#include <algorithm>
#include <cstdint>

#include "sliver/sparse.h"

namespace sliver {
namespace {

template <int NT, int R>
void run(const F32SpmmArgs& p) {
  for (int64_t b = 0; b < p.nblocks; ++b) {
    const int64_t row0 = b * R;
    float acc[R][NT];
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < NT; ++j) acc[r][j] = p.acc_in ? p.acc_in[(row0 + r) * NT + j] : 0.f;
    for (int64_t e = p.ptr[b]; e < p.ptr[b + 1]; ++e) {
      const int64_t k = p.kidx[e];
      const float* xr = p.x + (p.eoff   ? int64_t{p.eoff[e]}
                                : p.koff ? int64_t{p.koff[k]}
                                         : k * NT);
      for (int r = 0; r < R; ++r) {
        const float wv = p.w[e * R + r];
        for (int j = 0; j < NT; ++j) acc[r][j] += wv * xr[j];
      }
    }
    for (int r = 0; r < R && row0 + r < p.rows; ++r) {
      const float bias = p.bias ? p.bias[row0 + r] : 0.f;
      for (int64_t j = 0; j < p.nt; ++j)
        p.y[(row0 + r) * p.ldy + j] =
            p.epilogue ? apply_act(p.act, acc[r][j] + bias, p.alpha, p.beta) : acc[r][j];
    }
  }
}

void pack_rows(int NT, int64_t kc, int64_t nt, const float* src, int64_t ld, float* dst) {
  for (int64_t k = 0; k < kc; ++k)
    for (int64_t j = 0; j < NT; ++j) dst[k * NT + j] = j < nt ? src[k * ld + j] : 0.f;
}

void pack_cols(int NT, int64_t kc, int64_t nt, const float* src, int64_t ld, float* dst) {
  for (int64_t k = 0; k < kc; ++k)
    for (int64_t j = 0; j < NT; ++j) dst[k * NT + j] = j < nt ? src[j * ld + k] : 0.f;
}

void transpose(int64_t rows, int64_t cols, const float* t, int64_t ldt, float* y, int64_t ldy) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) y[j * ldy + i] = t[i * ldt + j];
}

}  // namespace

#define SLIVER_SPMM_DEFINE_scalar(name, nt, r) \
  void name(const F32SpmmArgs& p) { run<nt, r>(p); }
#define SLIVER_SPMM_DEFINE_avx2(name, nt, r)
#define SLIVER_SPMM_DEFINE_avx512(name, nt, r)
#define SLIVER_F32_SPMM_KERNEL(name, nt, r, isa) SLIVER_SPMM_DEFINE_##isa(name, nt, r)
#include "f32_spmm.inc"
#undef SLIVER_F32_SPMM_KERNEL

const F32SpmmHelpers kF32SpmmHelpersScalar = {pack_rows, pack_cols, transpose};

}  // namespace sliver
