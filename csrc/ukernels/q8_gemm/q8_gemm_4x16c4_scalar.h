// Shared body of the portable 4x16c4 twins. They read the same panels as the AVX2 kernels and
// reproduce vpmaddubsw bit for bit (s16-saturating pair sums), so "fast" on an unsafe panel
// gives the same wrong answer on every ISA and the twins can be compared on any input.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>

#include "q8_pair_fixes.h"
#include "sliver/qgemm.h"

namespace sliver {
namespace q8scalar {

constexpr int kMR = 4, kNR = 16, kKR = 4;

inline int32_t sat16(int32_t v) { return std::min<int32_t>(32767, std::max<int32_t>(-32768, v)); }

// kSignMag: A group = 16 bytes |x| + 16 bytes sign mask, weight used is w ^ mask;
// otherwise A group = 16 bytes u, weight used as is.
template <bool kSignMag>
inline void gemm_4x16c4(const Q8TileArgs& t) {
  const int64_t mr = t.mr, kgroups = t.kgroups;
  assert(mr >= 1 && mr <= kMR && t.nc >= 1 && t.nc <= kNR && kgroups >= 0);
  constexpr int kAStride = (kSignMag ? 2 : 1) * kMR * kKR;
  const uint8_t* a = t.a;
  const int8_t* b = t.b;
  uint32_t sum[kMR][kNR] = {};  // wraps mod 2^32 like vpaddd
  for (int64_t g = 0; g < kgroups; ++g, a += kAStride, b += kNR * kKR) {
    for (int64_t i = 0; i < mr; ++i) {
      const uint8_t* ai = a + kKR * i;
      for (int j = 0; j < kNR; ++j) {
        const int8_t* bj = b + kKR * j;
        for (int p = 0; p < kKR; p += 2) {
          int32_t w0 = bj[p], w1 = bj[p + 1];
          if (kSignMag) {
            w0 = static_cast<int8_t>(w0 ^ static_cast<int8_t>(ai[kMR * kKR + p]));
            w1 = static_cast<int8_t>(w1 ^ static_cast<int8_t>(ai[kMR * kKR + p + 1]));
          }
          sum[i][j] += static_cast<uint32_t>(sat16(ai[p] * w0 + ai[p + 1] * w1));
        }
      }
    }
  }
  q8fix::sum_pair_fixes<kSignMag>(t, sum);
  int32_t acc[kMR * kNR];
  for (int64_t i = 0; i < mr; ++i)
    for (int j = 0; j < kNR; ++j) acc[i * kNR + j] = static_cast<int32_t>(sum[i][j]);
  q8_finish_tile_scalar(t, acc, kNR);
}

}  // namespace q8scalar
}  // namespace sliver
