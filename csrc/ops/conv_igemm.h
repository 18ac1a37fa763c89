// The GEMM engine shared by the FP32 conv paths (im2col in conv.cc, Winograd in conv_winograd.cc).
//
// Both paths produce their B operand (im2col panels, transformed tiles) directly in the
// micro-kernel's packed-panel layout, a few panels at a time, in L1/L2-sized scratch, and call
// the micro-kernel on it at once: the driver's loop nest (gemm.h) minus its B packing. A is the
// weights, packed once as row tiles of balanced heights.
#pragma once

#include <cstdint>
#include <memory>

#include "ops/conv_geometry.h"
#include "sliver/gemm.h"

namespace sliver::ops {

/// Row tiles of W: ceil(M / MR) tiles of near-equal height. The plain split (MR, ..., MR, rest)
/// can leave a tile of 1-2 rows, whose few accumulator chains run the FMA units at half speed
/// or less; equal heights (32 = 6 6 5 5 5 5 rather than 6 6 6 6 6 2) avoid that.
struct RowTiles {
  int64_t count, base, extra;  // tiles [0, extra) have base + 1 rows, the others base
  RowTiles(int64_t m, int64_t mr)
      : count((m + mr - 1) / mr), base(count ? m / count : 0), extra(count ? m % count : 0) {}
  int64_t row(int64_t t) const { return t * base + std::min(t, extra); }
  int64_t rows(int64_t t) const { return base + (t < extra ? 1 : 0); }
};

/// Packs W (M x K, row-major) as RowTiles(M, MR): tile t at t * K * MR floats, element (i, k)
/// at [k * MR + i] (the micro-kernel's packed-A layout, zero padded to MR rows).
std::shared_ptr<PackedA> pack_conv_weights(const F32GemmKernel& kern, int64_t m, int64_t k,
                                           const float* w);

/// C = A * B (+ ep) for the rows of A's row tiles [t0, t1) and `panels` packed B panels (K x NR
/// each, K * NR floats apart, 64-byte aligned; the last one nr columns wide). C's row m starts at
/// c + m * ldc; ep (nullable: plain sums) has bias per row and residual laid out like C with
/// ld_residual, both already advanced to C's (0, 0). K is blocked to keep B panels in L1.
void conv_gemm_panels(const F32GemmKernel& kern, const PackedA& a, int64_t t0, int64_t t1,
                      const float* b, int64_t panels, int64_t nr, float* c, int64_t ldc,
                      const Epilogue* ep);

/// Copies planes [c0, c1) of x (planes of g's input) into dst as ph x pw planes, input row r
/// and column q at (r + h.pad_begin, q + w.pad_begin), zeros elsewhere (the padding).
void pad_planes(const ConvGeom& g, const float* x, float* dst, int64_t c0, int64_t c1, int64_t ph,
                int64_t pw);

/// Whether the n floats at x are all finite (no NaN, no infinity).
bool all_finite(const float* x, int64_t n);

}  // namespace sliver::ops
