// q8_igemm_6x16c4_scalar: the portable twin of the AVX2 indirect-GEMM conv kernels; the same
// sums from the same packed panel (q8_igemm.h), requantized in requant.h's reference order.
#include <algorithm>
#include <cstdint>

#include "q8_igemm.h"
#include "sliver/requant.h"

namespace sliver {
namespace {

template <bool kSigned>
void igemm(const Q8IgemmTile& t) {
  uint32_t acc[kQ8IgemmMR][kQ8IgemmNR] = {};  // int32 sums wrap like the reference's
  const int16_t* b = t.b;
  const int64_t groups = (t.c + 3) / 4;
  for (int64_t tap = 0; tap < t.ntaps; ++tap) {
    for (int64_t g = 0; g < groups; ++g, b += 64) {
      const int64_t off = std::min(4 * g, t.c - 4);
      for (int64_t i = 0; i < t.mr; ++i) {
        const uint8_t* a = t.rows[kQ8IgemmMR * tap + i] + off;
        int32_t u[4];
        for (int k = 0; k < 4; ++k) u[k] = kSigned ? int32_t{a[k] ^ 0x80} : int32_t{a[k]};
        for (int j = 0; j < kQ8IgemmNR; ++j) {
          const int16_t* v = b + (j / 8) * 32 + 2 * (j % 8);  // (k0, k2) pair; (k1, k3) at +16
          acc[i][j] +=
              static_cast<uint32_t>(u[0] * v[0] + u[2] * v[1] + u[1] * v[16] + u[3] * v[17]);
        }
      }
    }
  }
  const Q8ConvRequant& rq = *t.rq;
  for (int64_t i = 0; i < t.mr; ++i)
    for (int64_t j = 0; j < t.nc; ++j) {
      const int64_t n = t.n0 + j;
      const int32_t v = static_cast<int32_t>(acc[i][j] + static_cast<uint32_t>(rq.col_term[n]));
      const int32_t q = requantize(v, static_cast<float>(rq.multiplier[n]), rq.y_zero_point,
                                   rq.qmin, rq.qmax, RequantRounding::onnx_reference);
      t.y[i * t.ldy + j] = static_cast<uint8_t>(q);
    }
}

}  // namespace

void qu8_igemm_6x16c4_scalar(const Q8IgemmTile& t) { igemm<false>(t); }
void qs8_igemm_6x16c4_scalar(const Q8IgemmTile& t) { igemm<true>(t); }

}  // namespace sliver
