// x32_transpose_avx2: 32-bit 2-D transpose (contract in x32_transpose.h) in 8 x 8 register
// transposes (avx2::transpose8) over 32 x 32 tiles; edges of fewer than 8 rows or columns go
// through the scalar twin.
#include <immintrin.h>

#include <algorithm>

#include "ukernels/f32_transpose8_avx2.h"
#include "x32_transpose.h"

namespace sliver {

void x32_transpose_avx2(int64_t A, int64_t B, const uint32_t* src, int64_t sb, uint32_t* dst,
                        int64_t ldd) {
  constexpr int64_t kTile = 32;
  const int64_t A8 = A / 8 * 8, B8 = B / 8 * 8;
  const float* s = reinterpret_cast<const float*>(src);
  float* d = reinterpret_cast<float*>(dst);
  for (int64_t a0 = 0; a0 < A8; a0 += kTile) {
    const int64_t a1 = std::min(A8, a0 + kTile);
    for (int64_t b0 = 0; b0 < B8; b0 += kTile) {
      const int64_t b1 = std::min(B8, b0 + kTile);
      for (int64_t b = b0; b < b1; b += 8) {
        for (int64_t a = a0; a < a1; a += 8) {
          __m256 r[8];
          for (int q = 0; q < 8; ++q) r[q] = _mm256_loadu_ps(s + a + (b + q) * sb);
          avx2::transpose8(r);
          for (int q = 0; q < 8; ++q) _mm256_storeu_ps(d + (a + q) * ldd + b, r[q]);
        }
      }
    }
  }
  // The edges: columns B8.. of the first A8 rows, then the last A - A8 rows entirely.
  if (B8 < B) x32_transpose_scalar(A8, B - B8, src + B8 * sb, sb, dst + B8, ldd);
  if (A8 < A) x32_transpose_scalar(A - A8, B, src + A8, sb, dst + A8 * ldd, ldd);
}

}  // namespace sliver
