// q8_wconv_6x16c2_scalar: the portable twin of the widened-image conv kernel; the same sums from
// the same packed panel (q8_wconv.h, slot order included), requantized in requant.h's reference
// order.
#include <cstdint>

#include "q8_wconv.h"
#include "q8_widen_planes.h"
#include "sliver/requant.h"

namespace sliver {

void q8_wconv_6x16c2_scalar(const Q8WconvBlock& a) {
  const Q8ConvRequant& rq = *a.rq;
  for (int64_t i = 0; i < a.pixels; ++i) {
    uint32_t acc[kQ8WconvNR];  // int32 sums wrap like the reference's; by slot
    for (int s = 0; s < kQ8WconvNR; ++s) acc[s] = static_cast<uint32_t>(rq.col_term[a.n0 + s]);
    const int16_t* b = a.b;
    for (int64_t q = 0; q < a.npairs; ++q, b += 32) {
      const int16_t* x = a.px[i] + a.pair_off[q];
      for (int s = 0; s < kQ8WconvNR; ++s)
        acc[s] += static_cast<uint32_t>(x[0] * b[2 * s] + x[1] * b[2 * s + 1]);
    }
    for (int64_t j = 0; j < a.nc; ++j) {
      const int64_t s = q8_wconv_slot(j, a.nc), n = a.n0 + s;
      const int32_t q = requantize(static_cast<int32_t>(acc[s]),
                                   static_cast<float>(rq.multiplier[n]), rq.y_zero_point, rq.qmin,
                                   rq.qmax, RequantRounding::onnx_reference);
      a.y[i * a.ldy + j] = static_cast<uint8_t>(q);
    }
  }
}

void q8_widen_scalar(const uint8_t* src, int64_t n, int64_t c, int64_t plane, bool signed_x,
                     int32_t zp, int16_t* dst) {
  if (plane == 0) {  // one run of n * c codes: the same as one plane
    plane = n * c;
    n *= c;
    c = 1;
  }
  if (signed_x) return q8widen::planes<int8_t>(src, n, c, plane, zp, dst);
  q8widen::planes<uint8_t>(src, n, c, plane, zp, dst);
}

}  // namespace sliver
