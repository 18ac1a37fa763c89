// Blocked 2-D transposes of 32-bit elements (float, int32, ...), one ISA per source file.
//
// Contract of x32_transpose_<isa>(A, B, src, sb, dst, ldd): dst[a * ldd + b] = src[a + b * sb]
// for a < A, b < B (src and dst do not overlap). This is the inner block of a Transpose that
// moves the source's contiguous axis outward (NHWC <-> NCHW, K^T in attention, a 2-D matrix):
// walking the output rows directly would read every element from a different cache line.
#pragma once

#include <cstdint>

namespace sliver {

using X32TransposeFn = void (*)(int64_t A, int64_t B, const uint32_t* src, int64_t sb,
                                uint32_t* dst, int64_t ldd);

#define SLIVER_X32_TRANSPOSE_KERNEL(name, isa)                                            \
  void name(int64_t A, int64_t B, const uint32_t* src, int64_t sb, uint32_t* dst, \
            int64_t ldd);
#include "x32_transpose.inc"
#undef SLIVER_X32_TRANSPOSE_KERNEL

/// The best kernel for this CPU (AVX2 when usable, else scalar).
X32TransposeFn x32_transpose_kernel();

}  // namespace sliver
