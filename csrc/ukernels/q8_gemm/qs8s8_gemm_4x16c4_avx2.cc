// qs8s8_gemm_4x16c4_avx2: exact s8 x s8 via sign-magnitude A (|x| and a sign mask): every
// vpmaddubsw pair sum |x0| w0' + |x1| w1' stays in [-32768, 32512]. See qgemm.h.
#include "q8_gemm_4x16c4_avx2.h"
#include "sliver/qgemm.h"

namespace sliver {

void qs8s8_gemm_4x16c4_avx2(const Q8TileArgs& t) { q8avx2::gemm_4x16c4_dispatch<true>(t); }

}  // namespace sliver
