// Picks the pooling row kernels for this CPU once.
#include "f32_pool.h"
#include "sliver/cpu.h"

namespace sliver {

const F32PoolRowKernels& f32_pool_row() {
  static const F32PoolRowKernels k = [] {
#if defined(__x86_64__) || defined(_M_X64)
    if (isa_usable("avx2"))
      return F32PoolRowKernels{f32_pool_row_max_avx2, f32_pool_row_sum_avx2,
                               f32_pool_rows_max_avx2, "avx2"};
#endif
    return F32PoolRowKernels{f32_pool_row_max_scalar, f32_pool_row_sum_scalar,
                             f32_pool_rows_max_scalar, "scalar"};
  }();
  return k;
}

}  // namespace sliver
