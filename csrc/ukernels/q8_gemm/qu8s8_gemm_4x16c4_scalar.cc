// qu8s8_gemm_4x16c4_scalar: portable twin of qu8s8_gemm_4x16c4_avx2 (saturating pair sums).
#include "q8_gemm_4x16c4_scalar.h"
#include "sliver/qgemm.h"

namespace sliver {

void qu8s8_gemm_4x16c4_scalar(const Q8TileArgs& t) { q8scalar::gemm_4x16c4<false>(t); }

}  // namespace sliver
