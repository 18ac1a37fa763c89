// x{32,8}_transpose_scalar: the portable twins (contract in transpose.h): 32 x 32 tiles, each
// source run read in order while the tile's destination lines stay in L1.
#include <algorithm>

#include "transpose.h"

namespace sliver {
namespace {

template <class U>
void tiled(int64_t A, int64_t B, const void* src_v, int64_t sb, void* dst_v, int64_t ldd) {
  constexpr int64_t kTile = 32;
  const U* src = static_cast<const U*>(src_v);
  U* dst = static_cast<U*>(dst_v);
  for (int64_t a0 = 0; a0 < A; a0 += kTile) {
    const int64_t a1 = std::min(A, a0 + kTile);
    for (int64_t b0 = 0; b0 < B; b0 += kTile) {
      const int64_t b1 = std::min(B, b0 + kTile);
      for (int64_t b = b0; b < b1; ++b)
        for (int64_t a = a0; a < a1; ++a) dst[a * ldd + b] = src[a + b * sb];
    }
  }
}

}  // namespace

void x32_transpose_scalar(int64_t A, int64_t B, const void* src, int64_t sb, void* dst,
                          int64_t ldd) {
  tiled<uint32_t>(A, B, src, sb, dst, ldd);
}
void x8_transpose_scalar(int64_t A, int64_t B, const void* src, int64_t sb, void* dst,
                         int64_t ldd) {
  tiled<uint8_t>(A, B, src, sb, dst, ldd);
}

}  // namespace sliver
