// The GEMM engine shared by the FP32 conv paths (im2col in conv.cc, few pixels in
// conv_few_pixels.cc, Winograd in conv_winograd.cc).
//
// The paths produce their activation operand (im2col panels, transformed tiles) directly in the
// micro-kernel's packed-panel layout, one cache block at a time, in L1/L2-sized scratch, and
// call the micro-kernel on it at once: the driver's loop nest (gemm.h) minus its packing of
// activations. The weights are packed once: as A row tiles of balanced heights, or (few pixels)
// as B panels, K-block-major where K is blocked so that each K block streams in one sequential
// read.
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

/// Packs W (M x K, row-major) as RowTiles(M, MR), zero padded to MR rows per tile. kc == 0: tile
/// t at t * K * MR floats, element (i, k) at [k * MR + i] (the micro-kernel's packed-A layout).
/// kc > 0: K-block-major, for conv_gemm_kblock: K in blocks of kc rows (the last one shorter),
/// block b at b * kc * count * MR floats holding every tile (t at t * kcb * MR, kcb the block's
/// rows), so that one K block of all of A is one sequential stream.
std::shared_ptr<PackedA> pack_conv_weights(const F32GemmKernel& kern, int64_t m, int64_t k,
                                           const float* w, int64_t kc = 0);

/// C = A * B (+ ep) for the rows of A's row tiles [t0, t1) and `panels` packed B panels (K x NR
/// each, K * NR floats apart, 64-byte aligned; the last one nr columns wide). C's row m starts at
/// c + m * ldc; ep (nullable: plain sums) has bias per row and residual laid out like C with
/// ld_residual, both already advanced to C's (0, 0). K is blocked to keep B panels in L1.
void conv_gemm_panels(const F32GemmKernel& kern, const PackedA& a, int64_t t0, int64_t t1,
                      const float* b, int64_t panels, int64_t nr, float* c, int64_t ldc,
                      const Epilogue* ep);

/// Packs W (M x K, row-major) transposed, as the micro-kernel's B panels (for convs with the
/// pixels on the rows of the GEMM): K-block-major with blocks of kc rows (kc <= 0: one block),
/// block pc at pc * ceil(M / NR) * NR floats holding every panel, panel j at j * kcb * NR
/// (kcb the block's rows), element (k, m) at [k * NR + m - j * NR], zero padded to NR columns.
std::shared_ptr<PackedB> pack_conv_weights_t(const F32GemmKernel& kern, int64_t m, int64_t k,
                                             const float* w, int64_t kc);

/// K block pc of A packed by pack_conv_weights (pc a multiple of its kc, or 0).
inline const float* conv_a_block(const PackedA& a, int64_t pc) {
  return a.data.get() + pc * RowTiles(a.M, a.mr).count * a.mr;
}

/// One K block of a conv GEMM on packed operands: C (+)= A * B for A's row tiles [t0, t1) and
/// `panels` B panels. a: the K block of A, tile t at a + t * kc * MR (heights from `tiles`);
/// b: panel j at b + j * kc * NR (64-byte aligned; the last one nr columns wide). first: C is
/// written, else added to; ep (the last K block only, else nullptr) as in conv_gemm_panels, with
/// a bias per row (ep->bias_per_row) or per column. Loops BLIS-style: A in L2-sized blocks of
/// row tiles, each streamed past a few B panels that stay in L1. prefetch_b: B comes from
/// memory (weights), so each group of B panels is prefetched while the one before is in use.
void conv_gemm_kblock(const F32GemmKernel& kern, const float* a, const RowTiles& tiles,
                      int64_t t0, int64_t t1, int64_t kc, const float* b, int64_t panels,
                      int64_t nr, bool first, const Epilogue* ep, float* c, int64_t ldc,
                      bool prefetch_b = false);

/// Copies planes [c0, c1) of x (planes of g's input) into dst as ph rows of `phases` column
/// phases pws floats wide each (plane p at dst + p * ph * phases * pws): padded row r, column
/// q (input row r - h.pad_begin, column q - w.pad_begin; zeros outside the input, the padding)
/// goes to row r, phase q % phases, index q / phases. With phases == w.s every window column
/// of a strided conv reads adjacent floats (phases == 1: a plain zero-bordered copy).
void pad_planes(const ConvGeom& g, const float* x, float* dst, int64_t c0, int64_t c1, int64_t ph,
                int64_t pws, int64_t phases);

/// Whether the n floats at x are all finite (no NaN, no infinity).
bool all_finite(const float* x, int64_t n);

}  // namespace sliver::ops
