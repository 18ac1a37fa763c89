// q8_dwconv_nhwc_scalar: the portable twin of the AVX2 kernels (same contract, q8_dwconv.h).
#include <cstdint>

#include "q8_dwconv.h"
#include "sliver/requant.h"

namespace sliver {
namespace {

template <class T>
void dwconv(const Q8DwconvArgs& a) {
  const Q8ConvRequant& rq = *a.rq;
  for (int64_t px = 0; px < a.pixels; ++px) {
    const int64_t off = px * a.step;
    for (int64_t c = 0; c < a.channels; ++c) {
      const int16_t* w = a.w + (c / 16) * a.pairs * 32 + (c % 16 / 8) * 16 + 2 * (c % 8);
      uint32_t acc = static_cast<uint32_t>(rq.col_term[c]);  // wraps like the reference
      for (int64_t p = 0; p < a.pairs; ++p, w += 32) {
        const int32_t x0 = reinterpret_cast<const T*>(a.taps[2 * p] + off)[c];
        const int32_t x1 = reinterpret_cast<const T*>(a.taps[2 * p + 1] + off)[c];
        acc += static_cast<uint32_t>(x0 * w[0] + x1 * w[1]);
      }
      const int32_t q = requantize(static_cast<int32_t>(acc), static_cast<float>(rq.multiplier[c]),
                                   rq.y_zero_point, rq.qmin, rq.qmax,
                                   RequantRounding::onnx_reference);
      a.y[px * a.channels + c] = static_cast<uint8_t>(q);
    }
  }
}

}  // namespace

void qu8_dwconv_nhwc_scalar(const Q8DwconvArgs& a) { dwconv<uint8_t>(a); }
void qs8_dwconv_nhwc_scalar(const Q8DwconvArgs& a) { dwconv<int8_t>(a); }

}  // namespace sliver
