// q8_vlut1_scalar, q8_vlut2_scalar: the portable table gathers (q8_vlut.h). Restrict pointers:
// a byte store may alias anything, so without them every iteration would reload the table
// pointer.
#include <cstdint>
#include <cstring>

#include "q8_vlut.h"

namespace sliver {

void q8_vlut1_scalar(const uint8_t* __restrict table, int64_t n, const uint8_t* __restrict x,
                     uint8_t* __restrict y) {
  for (int64_t i = 0; i < n; ++i) y[i] = table[x[i]];
}

void q8_vlut2_scalar(const uint8_t* __restrict table, int64_t n, const uint8_t* __restrict a,
                     int64_t a_stride, const uint8_t* __restrict b, int64_t b_stride,
                     uint8_t* __restrict y) {
  if (a_stride && b_stride) {
    for (int64_t i = 0; i < n; ++i) y[i] = table[(static_cast<int64_t>(a[i]) << 8) | b[i]];
  } else if (b_stride) {  // a row of the table
    const uint8_t* row = table + (static_cast<int64_t>(a[0]) << 8);
    for (int64_t i = 0; i < n; ++i) y[i] = row[b[i]];
  } else if (a_stride) {  // a column
    const uint8_t* col = table + b[0];
    for (int64_t i = 0; i < n; ++i) y[i] = col[static_cast<int64_t>(a[i]) << 8];
  } else {
    std::memset(y, table[(static_cast<int64_t>(a[0]) << 8) | b[0]], static_cast<size_t>(n));
  }
}

}  // namespace sliver
