// Partial-vector stores for the AVX2 kernels' ragged edges. Include from _avx2.cc files only.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace sliver::avx2 {

// Stores the first n (1..8) lanes. Full vectors take a plain store: AMD's vpmaskmov stores cost
// tens of cycles, so only the ragged edge goes through a stack copy. Vector stores, not a memcpy
// from the argument's address: that made GCC keep a kernel's whole accumulator array in memory
// inside its loop (the INT8 sparse tiles ran 1.6x slower). Always inlined: a call would spill
// every live accumulator (all ymm registers are caller-saved).
inline __attribute__((always_inline)) void store_lanes(int32_t* dst, __m256i v, int64_t n) {
  if (n == 8) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), v);
  } else {
    alignas(32) int32_t tmp[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), v);
    std::memcpy(dst, tmp, static_cast<size_t>(n) * sizeof(int32_t));
  }
}

inline __attribute__((always_inline)) void store_lanes(float* dst, __m256 v, int64_t n) {
  if (n == 8) {
    _mm256_storeu_ps(dst, v);
  } else {
    alignas(32) float tmp[8];
    _mm256_store_ps(tmp, v);
    std::memcpy(dst, tmp, static_cast<size_t>(n) * sizeof(float));
  }
}

}  // namespace sliver::avx2
