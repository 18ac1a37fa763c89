// Software prefetch of a block of rows (see prefetch_rows).
#pragma once

#include <cstdint>

namespace sliver {

/// Asks for the cache lines of columns [c0, c1) of `rows` rows (row stride ld floats). For
/// operands read in place as many row streams (a weight-times-image product walks K input
/// planes side by side): more streams than the hardware prefetchers follow, so without this the
/// next block's first touch of every line waits on L3.
inline void prefetch_rows(const float* x, int64_t rows, int64_t ld, int64_t c0, int64_t c1) {
  constexpr int64_t kLineFloats = 16;
  if (c1 <= c0) return;
  for (int64_t k = 0; k < rows; ++k) {
    const float* row = x + k * ld;
    for (int64_t c = c0; c < c1; c += kLineFloats) __builtin_prefetch(row + c);
    __builtin_prefetch(row + c1 - 1);
  }
}

}  // namespace sliver
