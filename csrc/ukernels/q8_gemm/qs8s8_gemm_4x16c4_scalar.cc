// qs8s8_gemm_4x16c4_scalar: portable twin of qs8s8_gemm_4x16c4_avx2 (exact sign-magnitude).
#include "q8_gemm_4x16c4_scalar.h"
#include "sliver/qgemm.h"

namespace sliver {

void qs8s8_gemm_4x16c4_scalar(const Q8TileArgs& t) { q8scalar::gemm_4x16c4<true>(t); }

}  // namespace sliver
