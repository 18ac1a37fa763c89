// Shared body of the 4x16c4 AVX2 kernels (qu8s8_* and qs8s8_*); include only from *_avx2.cc.
//
// Tile: up to 4 rows x 16 columns in 8 ymm accumulators (2 per row). Per k group (4 k) the
// kernel loads two B vectors (8 columns x 4 k each), broadcasts 4 bytes per row and runs
// vpmaddubsw -> vpmaddwd(ones) -> vpaddd per (row, vector): 8 int32 lanes each sum 4 products.
// The two vpmadd* of a group need the two integer-multiply pipes for a cycle, which sets the
// ceiling (32 MACs/cycle); 4 rows keep 8 independent chains in flight and leave registers for
// the sign-magnitude variant, which adds a broadcast mask and one vpxor per vpmaddubsw.
//
// A panel per k group: offset_u8 = 16 bytes (row i at 4i); sign_mag = 16 bytes |x| + 16 bytes
// mask. B panel per k group: 64 bytes (column j at 4j). A 16-byte, B 32-byte aligned.
// The tile is finished (corrections, output conversion) from the registers: no int32 tile is
// stored, which matters for small K where the epilogue is a large part of a call.
#pragma once

#include <immintrin.h>

#include <cassert>
#include <cstdint>

#include "q8_epilogue_avx2.h"
#include "q8_pair_fixes.h"
#include "sliver/qgemm.h"

namespace sliver {
namespace q8avx2 {

constexpr int kMR = 4, kNR = 16, kKR = 4;

template <bool kSignMag>
struct RowStep;

// u (offset u8) x w: the classic chain.
template <>
struct RowStep<false> {
  static constexpr int kAStride = kMR * kKR;
  static inline void run(const uint8_t* a, int row, __m256i b0, __m256i b1, __m256i ones,
                         __m256i& c0, __m256i& c1) {
    const __m256i va = _mm256_set1_epi32(*reinterpret_cast<const int32_t*>(a + 4 * row));
    c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(_mm256_maddubs_epi16(va, b0), ones));
    c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(_mm256_maddubs_epi16(va, b1), ones));
  }
};

// |x| x (w ^ sign): pair sums in [-32768, 32512], never saturate. The two columns' chains are
// written interleaved stage by stage: GCC keeps that order, which measured ~3% faster on Zen 3
// than chain after chain.
template <>
struct RowStep<true> {
  static constexpr int kAStride = 2 * kMR * kKR;
  static inline void run(const uint8_t* a, int row, __m256i b0, __m256i b1, __m256i ones,
                         __m256i& c0, __m256i& c1) {
    const __m256i mag = _mm256_set1_epi32(*reinterpret_cast<const int32_t*>(a + 4 * row));
    const __m256i sgn =
        _mm256_set1_epi32(*reinterpret_cast<const int32_t*>(a + kMR * kKR + 4 * row));
    __m256i t0 = _mm256_xor_si256(b0, sgn);
    __m256i t1 = _mm256_xor_si256(b1, sgn);
    t0 = _mm256_maddubs_epi16(mag, t0);
    t1 = _mm256_maddubs_epi16(mag, t1);
    t0 = _mm256_madd_epi16(t0, ones);
    t1 = _mm256_madd_epi16(t1, ones);
    c0 = _mm256_add_epi32(c0, t0);
    c1 = _mm256_add_epi32(c1, t1);
  }
};

template <int MR, bool kSignMag>
inline void gemm_4x16c4(const Q8TileArgs& t) {
  using Step = RowStep<kSignMag>;
  const uint8_t* a = t.a;
  const int8_t* b = t.b;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00;
  __m256i c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  // Two k groups per iteration give GCC room to interleave them (+2-3% on the exact kernel).
#pragma GCC unroll 2
  for (int64_t g = 0; g < t.kgroups; ++g) {
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b));
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + 32));
    Step::run(a, 0, b0, b1, ones, c00, c01);
    if constexpr (MR > 1) Step::run(a, 1, b0, b1, ones, c10, c11);
    if constexpr (MR > 2) Step::run(a, 2, b0, b1, ones, c20, c21);
    if constexpr (MR > 3) Step::run(a, 3, b0, b1, ones, c30, c31);
    a += Step::kAStride;
    b += kNR * kKR;
  }
  if (t.nfixes) {
    alignas(32) uint32_t add[kMR][kNR] = {};
    q8fix::sum_pair_fixes<kSignMag>(t, add);
    auto load = [&](int i, int h) {
      return _mm256_load_si256(reinterpret_cast<const __m256i*>(add[i] + 8 * h));
    };
    c00 = _mm256_add_epi32(c00, load(0, 0));
    c01 = _mm256_add_epi32(c01, load(0, 1));
    c10 = _mm256_add_epi32(c10, load(1, 0));
    c11 = _mm256_add_epi32(c11, load(1, 1));
    c20 = _mm256_add_epi32(c20, load(2, 0));
    c21 = _mm256_add_epi32(c21, load(2, 1));
    c30 = _mm256_add_epi32(c30, load(3, 0));
    c31 = _mm256_add_epi32(c31, load(3, 1));
  }
  finish_tile<MR>(t, c00, c01, c10, c11, c20, c21, c30, c31);
}

template <bool kSignMag>
inline void gemm_4x16c4_dispatch(const Q8TileArgs& t) {
  assert(t.mr >= 1 && t.mr <= kMR && t.nc >= 1 && t.nc <= kNR && t.kgroups >= 0);
  assert((reinterpret_cast<uintptr_t>(t.a) & 15) == 0 &&
         (reinterpret_cast<uintptr_t>(t.b) & 31) == 0);
  switch (t.mr) {
    case 1:
      gemm_4x16c4<1, kSignMag>(t);
      break;
    case 2:
      gemm_4x16c4<2, kSignMag>(t);
      break;
    case 3:
      gemm_4x16c4<3, kSignMag>(t);
      break;
    default:
      gemm_4x16c4<4, kSignMag>(t);
      break;
  }
}

}  // namespace q8avx2
}  // namespace sliver
