// qs8s8_gemm_4x16c4_scalar: portable twin of qs8s8_gemm_4x16c4_avx2 (exact sign-magnitude).
#include "q8_gemm_4x16c4_scalar.h"
#include "sliver/qgemm.h"

namespace sliver {

void qs8s8_gemm_4x16c4_scalar(int64_t mr, int64_t kgroups, const uint8_t* a, const int8_t* b,
                              int32_t* acc) {
  q8scalar::gemm_4x16c4<true>(mr, kgroups, a, b, acc);
}

}  // namespace sliver
