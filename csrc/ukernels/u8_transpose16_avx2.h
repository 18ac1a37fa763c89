// A 16x16 byte transpose in xmm registers, shared by the AVX2 kernels that move bytes between
// rows and lanes (INT8 sparse panels, 8-bit transposes). Include from _avx2.cc files only.
#pragma once

#include <immintrin.h>

namespace sliver::avx2 {

/// r[j] = 16 bytes of lane j -> r[k] = byte k of lanes 0-15: four rounds of unpacks, each
/// doubling the width of the units that already hold consecutive lanes of one k.
inline __attribute__((always_inline)) void transpose16x16(__m128i (&r)[16]) {
  __m128i t[16], s[16];
  for (int p = 0; p < 8; ++p) {  // 16-bit units: lanes (2p, 2p + 1) of one k
    t[p] = _mm_unpacklo_epi8(r[2 * p], r[2 * p + 1]);      // k 0-7
    t[p + 8] = _mm_unpackhi_epi8(r[2 * p], r[2 * p + 1]);  // k 8-15
  }
  for (int h = 0; h < 16; h += 8) {  // 32-bit units: lanes 4q..4q+3
    for (int q = 0; q < 4; ++q) {
      s[h + q] = _mm_unpacklo_epi16(t[h + 2 * q], t[h + 2 * q + 1]);      // k h+0..h+3
      s[h + 4 + q] = _mm_unpackhi_epi16(t[h + 2 * q], t[h + 2 * q + 1]);  // k h+4..h+7
    }
  }
  for (int g = 0; g < 16; g += 4) {  // s[g..g+3]: lanes 0-3, 4-7, 8-11, 12-15 of k g..g+3
    const __m128i lo01 = _mm_unpacklo_epi32(s[g], s[g + 1]);      // lanes 0-7, k g, g+1
    const __m128i hi01 = _mm_unpackhi_epi32(s[g], s[g + 1]);      // lanes 0-7, k g+2, g+3
    const __m128i lo23 = _mm_unpacklo_epi32(s[g + 2], s[g + 3]);  // lanes 8-15, k g, g+1
    const __m128i hi23 = _mm_unpackhi_epi32(s[g + 2], s[g + 3]);  // lanes 8-15, k g+2, g+3
    r[g] = _mm_unpacklo_epi64(lo01, lo23);
    r[g + 1] = _mm_unpackhi_epi64(lo01, lo23);
    r[g + 2] = _mm_unpacklo_epi64(hi01, hi23);
    r[g + 3] = _mm_unpackhi_epi64(hi01, hi23);
  }
}

}  // namespace sliver::avx2
