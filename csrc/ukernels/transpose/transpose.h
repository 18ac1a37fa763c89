// Blocked 2-D transposes of 8-bit and 32-bit elements, one ISA per source file.
//
// Contract of x<bits>_transpose_<isa>(A, B, src, sb, dst, ldd): dst[a * ldd + b] =
// src[a + b * sb] for a < A, b < B, in elements of that width (src and dst do not overlap).
// This is the inner block of a Transpose that moves the source's contiguous axis outward
// (NHWC <-> NCHW, K^T in attention, a 2-D matrix): walking the output rows directly would read
// every element from a different cache line.
#pragma once

#include <cstdint>

namespace sliver {

using TransposeFn = void (*)(int64_t A, int64_t B, const void* src, int64_t sb, void* dst,
                             int64_t ldd);

#define SLIVER_TRANSPOSE_KERNEL(name, bytes, isa) \
  void name(int64_t A, int64_t B, const void* src, int64_t sb, void* dst, int64_t ldd);
#include "transpose.inc"
#undef SLIVER_TRANSPOSE_KERNEL

/// The best kernel for elements of `bytes` bytes on this CPU, or nullptr when there is none.
TransposeFn transpose_kernel(int bytes);

}  // namespace sliver
