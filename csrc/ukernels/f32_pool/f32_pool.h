// FP32 pooling along a row: the horizontal half of a separable 2-D pooling (pool.cc).
//
// Exactly the n outputs are written; x is read at t * s + j * d for t < n, j < k only (the
// caller clips windows to the row, so there are no bounds checks and no padding here).
#pragma once

#include <cstdint>

namespace sliver {

using F32PoolRowFn = void (*)(int64_t n, int64_t k, int64_t s, int64_t d, const float* x,
                              float* y);

#define SLIVER_F32_POOL_ROW(op)                                                        \
  void f32_pool_row_##op##_scalar(int64_t n, int64_t k, int64_t s, int64_t d, const float* x, \
                                  float* y);
#include "f32_pool.inc"
#undef SLIVER_F32_POOL_ROW
#if defined(__x86_64__) || defined(_M_X64)
#define SLIVER_F32_POOL_ROW(op)                                                      \
  void f32_pool_row_##op##_avx2(int64_t n, int64_t k, int64_t s, int64_t d, const float* x, \
                                float* y);
#include "f32_pool.inc"
#undef SLIVER_F32_POOL_ROW
#endif

/// Max pooling of one output row with non-overlapping windows (kw == sw in {1, 2}, d = 1):
/// y[t] = max over r < kh, j < kw of rows[r][t * kw + j], t < n; rows vertically first, so each
/// input element is loaded once. NaN propagates.
using F32PoolRowsMaxFn = void (*)(int64_t n, int64_t kw, const float* const* rows, int64_t kh,
                                  float* y);
void f32_pool_rows_max_scalar(int64_t n, int64_t kw, const float* const* rows, int64_t kh,
                              float* y);
#if defined(__x86_64__) || defined(_M_X64)
void f32_pool_rows_max_avx2(int64_t n, int64_t kw, const float* const* rows, int64_t kh,
                            float* y);
#endif

struct F32PoolRowKernels {
  F32PoolRowFn max, sum;
  F32PoolRowsMaxFn rows_max;
  const char* isa;
};

/// The row kernels for this CPU (AVX2 when usable, else scalar).
const F32PoolRowKernels& f32_pool_row();

}  // namespace sliver
