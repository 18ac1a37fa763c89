// qu8s8_gemm_4x16c4_scalar: portable twin of qu8s8_gemm_4x16c4_avx2 (saturating pair sums).
#include "q8_gemm_4x16c4_scalar.h"
#include "sliver/qgemm.h"

namespace sliver {

void qu8s8_gemm_4x16c4_scalar(int64_t mr, int64_t kgroups, const uint8_t* a, const int8_t* b,
                              int32_t* acc) {
  q8scalar::gemm_4x16c4<false>(mr, kgroups, a, b, acc);
}

}  // namespace sliver
