// qu8_vmul_scalar, qs8_vmul_scalar: the portable twins of the AVX2 QLinearMul kernels
// (q8_vaddmul.h): float((a - za)(b - zb)) * ratio, rounded, + zc, rounded.
#include <cstdint>

#include "q8_vaddmul.h"
#include "q8_vaddmul_scalar.h"

namespace sliver {
namespace {

using namespace q8_vaddmul_scalar;  // NOLINT(build/namespaces): this family's helpers

template <bool kSigned>
void vmul(const Q8QLinearParams& p, int64_t n, const uint8_t* a, int64_t as, const uint8_t* b,
          int64_t bs, uint8_t* y) {
  for (int64_t i = 0; i < n; ++i) {
    const float prod = (code<kSigned>(a + i * as) - p.za) * (code<kSigned>(b + i * bs) - p.zb);
    volatile float m = prod * p.ratio;  // rounded before the add: no contraction into an fma
    y[i] = saturate<kSigned>(m + p.zc);
  }
}

}  // namespace

void qu8_vmul_scalar(const Q8QLinearParams& p, int64_t n, const uint8_t* a, int64_t a_stride,
                     const uint8_t* b, int64_t b_stride, uint8_t* y) {
  vmul<false>(p, n, a, a_stride, b, b_stride, y);
}

void qs8_vmul_scalar(const Q8QLinearParams& p, int64_t n, const uint8_t* a, int64_t a_stride,
                     const uint8_t* b, int64_t b_stride, uint8_t* y) {
  vmul<true>(p, n, a, a_stride, b, b_stride, y);
}

}  // namespace sliver
