// x{32,8}_transpose_avx2: 2-D transposes (contract in transpose.h) in register blocks over
// 32 x 32 (32-bit: 8 x 8, avx2::transpose8) or 64 x 64 (8-bit: 16 x 16, avx2::transpose16x16)
// tiles; edges of fewer rows or columns than a block go through the scalar twins.
#include <immintrin.h>

#include <algorithm>

#include "transpose.h"
#include "ukernels/f32_transpose8_avx2.h"
#include "ukernels/u8_transpose16_avx2.h"

namespace sliver {
namespace {

// Register blocks of N x N elements: 8 floats in a ymm, 16 bytes in an xmm.
struct F32Block {
  using U = float;
  using V = __m256;
  static constexpr int64_t N = 8, kTile = 32;
  static V load(const U* p) { return _mm256_loadu_ps(p); }
  static void store(U* p, V v) { _mm256_storeu_ps(p, v); }
  static void transpose(V (&r)[N]) { avx2::transpose8(r); }
};
struct U8Block {
  using U = uint8_t;
  using V = __m128i;
  static constexpr int64_t N = 16, kTile = 64;
  static V load(const U* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
  static void store(U* p, V v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }
  static void transpose(V (&r)[N]) { avx2::transpose16x16(r); }
};

// Whole N x N blocks over kTile x kTile tiles; the edges (fewer than N rows or columns) go to
// the scalar twin.
template <class T>
void blocked(int64_t A, int64_t B, const void* src_v, int64_t sb, void* dst_v, int64_t ldd,
             TransposeFn edge) {
  using U = typename T::U;
  constexpr int64_t N = T::N;
  const U* src = static_cast<const U*>(src_v);
  U* dst = static_cast<U*>(dst_v);
  const int64_t Ab = A / N * N, Bb = B / N * N;
  for (int64_t a0 = 0; a0 < Ab; a0 += T::kTile) {
    const int64_t a1 = std::min(Ab, a0 + T::kTile);
    for (int64_t b0 = 0; b0 < Bb; b0 += T::kTile) {
      const int64_t b1 = std::min(Bb, b0 + T::kTile);
      for (int64_t b = b0; b < b1; b += N) {
        for (int64_t a = a0; a < a1; a += N) {
          typename T::V r[N];
          for (int64_t q = 0; q < N; ++q) r[q] = T::load(src + a + (b + q) * sb);
          T::transpose(r);
          for (int64_t q = 0; q < N; ++q) T::store(dst + (a + q) * ldd + b, r[q]);
        }
      }
    }
  }
  // Columns Bb.. of the first Ab rows, then the last A - Ab rows entirely.
  if (Bb < B) edge(Ab, B - Bb, src + Bb * sb, sb, dst + Bb, ldd);
  if (Ab < A) edge(A - Ab, B, src + Ab, sb, dst + Ab * ldd, ldd);
}

}  // namespace

void x32_transpose_avx2(int64_t A, int64_t B, const void* src, int64_t sb, void* dst,
                        int64_t ldd) {
  blocked<F32Block>(A, B, src, sb, dst, ldd, x32_transpose_scalar);
}

void x8_transpose_avx2(int64_t A, int64_t B, const void* src, int64_t sb, void* dst,
                       int64_t ldd) {
  blocked<U8Block>(A, B, src, sb, dst, ldd, x8_transpose_scalar);
}

}  // namespace sliver
