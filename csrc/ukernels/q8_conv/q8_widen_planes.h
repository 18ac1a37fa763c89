// Widening of planar (NCHW) rows into channels-last int16 (q8_wconv.h's Q8WidenFn with
// plane != 0), in plain C++ shared by the scalar and AVX2 kernels: first layers on 1-4 colour
// planes are the only planar inputs, and a fixed channel count lets the compiler unroll the
// interleave (a generic loop costs ~2x on 3 planes).
#pragma once

#include <cstdint>

namespace sliver::q8widen {

template <typename Code, int kC>
inline void planes_fixed(const uint8_t* src, int64_t n, int64_t plane, int32_t zp, int16_t* dst) {
  const Code* s = reinterpret_cast<const Code*>(src);
  for (int64_t i = 0; i < n; ++i)
    for (int k = 0; k < kC; ++k) dst[i * kC + k] = static_cast<int16_t>(s[k * plane + i] - zp);
}

template <typename Code>
inline void planes(const uint8_t* src, int64_t n, int64_t c, int64_t plane, int32_t zp,
                   int16_t* dst) {
  switch (c) {
    case 1: return planes_fixed<Code, 1>(src, n, plane, zp, dst);
    case 2: return planes_fixed<Code, 2>(src, n, plane, zp, dst);
    case 3: return planes_fixed<Code, 3>(src, n, plane, zp, dst);
    case 4: return planes_fixed<Code, 4>(src, n, plane, zp, dst);
    default: {
      const Code* s = reinterpret_cast<const Code*>(src);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t k = 0; k < c; ++k)
          dst[i * c + k] = static_cast<int16_t>(s[k * plane + i] - zp);
    }
  }
}

}  // namespace sliver::q8widen
