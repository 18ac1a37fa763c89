// The pair fixes of a B panel (qgemm.h), summed for one tile: shared by every 4x16c4 kernel.
// A panel has a handful of fixes at most (packing keeps a panel's fixes only while they cost
// less than the exact kernel would), so a scalar loop over them is enough.
#pragma once

#include <cstdint>

#include "sliver/qgemm.h"

namespace sliver {
namespace q8fix {

constexpr int kMR = 4, kNR = 16, kKR = 4;

// The kernel's operand for row i at k: u = x + 128 in offset_u8 panels, x in sign_mag ones.
template <bool kSignMag>
inline int32_t a_at(const uint8_t* a, int64_t k, int i) {
  const int64_t g = k / kKR;
  const int o = i * kKR + static_cast<int>(k % kKR);
  if constexpr (kSignMag) {
    const uint8_t* grp = a + g * 2 * kMR * kKR;
    const int32_t mag = grp[o];
    return grp[kMR * kKR + o] ? -mag : mag;
  } else {
    return a[g * kMR * kKR + o];
  }
}

/// add[i][j] = sum over the tile's fixes in column j of a(row i, k) * r (mod 2^32), rows < mr.
template <bool kSignMag>
inline void sum_pair_fixes(const Q8TileArgs& t, uint32_t (&add)[kMR][kNR]) {
  for (int64_t f = 0; f < t.nfixes; ++f) {
    const Q8PairFix& fx = t.fixes[f];
    for (int i = 0; i < t.mr; ++i)
      add[i][fx.col] += static_cast<uint32_t>(a_at<kSignMag>(t.a, fx.k, i) * int32_t{fx.r});
  }
}

}  // namespace q8fix
}  // namespace sliver
