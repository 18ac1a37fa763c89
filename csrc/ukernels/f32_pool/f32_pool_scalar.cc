// f32_pool_row_{max,sum}_scalar: the portable twins of the pooling row kernels.
#include <cstdint>

#include "f32_pool.h"

namespace sliver {
namespace {
inline float nan_max(float a, float b) { return a != a || a > b ? a : b; }

template <bool kMax>
void pool_row(int64_t n, int64_t k, int64_t s, int64_t d, const float* x, float* y) {
  for (int64_t t = 0; t < n; ++t) {
    const float* p = x + t * s;
    float acc = p[0];
    for (int64_t j = 1; j < k; ++j) acc = kMax ? nan_max(acc, p[j * d]) : acc + p[j * d];
    y[t] = acc;
  }
}
}  // namespace

void f32_pool_rows_max_scalar(int64_t n, int64_t kw, const float* const* rows, int64_t kh,
                              float* y) {
  for (int64_t t = 0; t < n; ++t) {
    float acc = rows[0][t * kw];
    for (int64_t r = 0; r < kh; ++r)
      for (int64_t j = r == 0 ? 1 : 0; j < kw; ++j) acc = nan_max(acc, rows[r][t * kw + j]);
    y[t] = acc;
  }
}

void f32_pool_row_max_scalar(int64_t n, int64_t k, int64_t s, int64_t d, const float* x,
                             float* y) {
  pool_row<true>(n, k, s, d, x, y);
}
void f32_pool_row_sum_scalar(int64_t n, int64_t k, int64_t s, int64_t d, const float* x,
                             float* y) {
  pool_row<false>(n, k, s, d, x, y);
}

}  // namespace sliver
