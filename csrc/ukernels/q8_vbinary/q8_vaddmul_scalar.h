// Shared pieces of the portable QLinearAdd / QLinearMul kernels (q8_vaddmul.h).
#pragma once

#include <cmath>
#include <cstdint>

namespace sliver::q8_vaddmul_scalar {

/// The code at x as a float.
template <bool kSigned>
inline float code(const uint8_t* x) {
  return kSigned ? static_cast<float>(static_cast<int8_t>(*x)) : static_cast<float>(*x);
}

/// The scalar twin of cvtps2dq then saturating packs (q8_simd_avx2.h's store32): NaN and
/// |v| >= 2^31 convert to INT_MIN, hence qmin; otherwise round half to even (nearbyint in the
/// default rounding mode) and saturate.
template <bool kSigned>
inline uint8_t saturate(float v) {
  const int32_t lo = kSigned ? -128 : 0, hi = kSigned ? 127 : 255;
  if (!(v >= -2147483648.f && v < 2147483648.f)) return static_cast<uint8_t>(lo);
  const int32_t r = static_cast<int32_t>(std::nearbyint(v));
  return static_cast<uint8_t>(r < lo ? lo : (r > hi ? hi : r));
}

}  // namespace sliver::q8_vaddmul_scalar
