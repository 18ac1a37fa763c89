// qu8s8_gemm_4x16c4_avx2: the classic vpmaddubsw chain on offset-u8 A (u = x + 128).
// Exact only on B panels that pack_q8_b marked fast-safe (no weight pair can saturate s16).
#include "q8_gemm_4x16c4_avx2.h"
#include "sliver/qgemm.h"

namespace sliver {

void qu8s8_gemm_4x16c4_avx2(const Q8TileArgs& t) { q8avx2::gemm_4x16c4_dispatch<false>(t); }

}  // namespace sliver
