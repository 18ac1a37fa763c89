// qu8s8_gemm_4x16c4_avx2: the classic vpmaddubsw chain on offset-u8 A (u = x + 128).
// Exact only on B panels that pack_q8_b marked fast-safe (no weight pair can saturate s16).
#include "q8_gemm_4x16c4_avx2.h"
#include "sliver/qgemm.h"

namespace sliver {

void qu8s8_gemm_4x16c4_avx2(int64_t mr, int64_t kgroups, const uint8_t* a, const int8_t* b,
                            int32_t* acc) {
  q8avx2::gemm_4x16c4_dispatch<false>(mr, kgroups, a, b, acc);
}

}  // namespace sliver
