// q8_dwconv_nhwc_scalar: the portable twin of the AVX2 kernels (same contract, q8_dwconv.h).
#include <cmath>
#include <cstdint>

#include "q8_dwconv.h"
#include "sliver/requant.h"

namespace sliver {
namespace {

template <class T>
void dwconv(int64_t channels, int ntaps, const void* const* taps, const int32_t* w,
            const int32_t* bias, const Q8DwconvParams& p, uint8_t* y) {
  for (int64_t c = 0; c < channels; ++c) {
    int32_t acc = bias[c];
    for (int t = 0; t < ntaps; ++t)
      acc += (static_cast<int32_t>(static_cast<const T*>(taps[t])[c]) - p.x_zero_point) *
             w[t * channels + c];
    volatile double prod = static_cast<double>(acc) * p.multiplier[c];  // no contraction
    double d = prod + p.y_zero_point;
    d = std::fmin(std::fmax(d, p.lo), p.hi);
    const int32_t v = static_cast<int32_t>(round_half_even(d));
    y[c] = p.signed_out ? static_cast<uint8_t>(static_cast<int8_t>(v)) : static_cast<uint8_t>(v);
  }
}

}  // namespace

void qu8_dwconv_nhwc_scalar(int64_t channels, int ntaps, const void* const* taps, const int32_t* w,
                            const int32_t* bias, const Q8DwconvParams& p, uint8_t* y) {
  dwconv<uint8_t>(channels, ntaps, taps, w, bias, p, y);
}

void qs8_dwconv_nhwc_scalar(int64_t channels, int ntaps, const void* const* taps, const int32_t* w,
                            const int32_t* bias, const Q8DwconvParams& p, uint8_t* y) {
  dwconv<int8_t>(channels, ntaps, taps, w, bias, p, y);
}

}  // namespace sliver
