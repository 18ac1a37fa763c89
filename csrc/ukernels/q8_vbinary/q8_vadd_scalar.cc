// qu8_vadd_scalar, qs8_vadd_scalar: the portable twins of the AVX2 QLinearAdd kernels, and the
// plain statement of their formula (q8_vaddmul.h). std::fma rounds once with or without an FMA
// unit.
#include <cmath>
#include <cstdint>

#include "q8_vaddmul.h"
#include "q8_vaddmul_scalar.h"

namespace sliver {
namespace {

using namespace q8_vaddmul_scalar;  // NOLINT(build/namespaces): this family's helpers

template <bool kSigned>
void vadd(const Q8QLinearParams& p, int64_t n, const uint8_t* a, int64_t as, const uint8_t* b,
          int64_t bs, uint8_t* y) {
  if (as == 0) {  // scalar-A runs fold A first, into their own fixed part
    const float c = std::fma(code<kSigned>(a), p.ra, p.fixed_a);
    for (int64_t i = 0; i < n; ++i)
      y[i] = saturate<kSigned>(std::fma(code<kSigned>(b + i * bs), p.rb, c));
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const float t = std::fma(code<kSigned>(b + i * bs), p.rb, p.fixed);
    y[i] = saturate<kSigned>(std::fma(code<kSigned>(a + i), p.ra, t));
  }
}

}  // namespace

void qu8_vadd_scalar(const Q8QLinearParams& p, int64_t n, const uint8_t* a, int64_t a_stride,
                     const uint8_t* b, int64_t b_stride, uint8_t* y) {
  vadd<false>(p, n, a, a_stride, b, b_stride, y);
}

void qs8_vadd_scalar(const Q8QLinearParams& p, int64_t n, const uint8_t* a, int64_t a_stride,
                     const uint8_t* b, int64_t b_stride, uint8_t* y) {
  vadd<true>(p, n, a, a_stride, b, b_stride, y);
}

}  // namespace sliver
