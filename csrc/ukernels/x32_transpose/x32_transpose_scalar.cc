// x32_transpose_scalar: the portable twin (contract in x32_transpose.h): 32 x 32 tiles, each
// source run read in order while the tile's destination lines stay in L1.
#include <algorithm>

#include "x32_transpose.h"

namespace sliver {

void x32_transpose_scalar(int64_t A, int64_t B, const uint32_t* src, int64_t sb, uint32_t* dst,
                          int64_t ldd) {
  constexpr int64_t kTile = 32;
  for (int64_t a0 = 0; a0 < A; a0 += kTile) {
    const int64_t a1 = std::min(A, a0 + kTile);
    for (int64_t b0 = 0; b0 < B; b0 += kTile) {
      const int64_t b1 = std::min(B, b0 + kTile);
      for (int64_t b = b0; b < b1; ++b)
        for (int64_t a = a0; a < a1; ++a) dst[a * ldd + b] = src[a + b * sb];
    }
  }
}

}  // namespace sliver
