// Im2col for the FP32 conv GEMMs, written straight in the micro-kernel's packed panel layout.
//
// The GEMM's "pixel" operand is the K x pixels matrix whose row r = (ci, i, j) holds, for each
// output pixel, the input value under window tap (i, j) of channel ci (0 in the padding). The
// micro-kernel reads it as panels of P pixels stored k-major (d[k * P + t]): B panels of NR
// pixels when the pixels are the GEMM's columns, A tiles of MR pixels when they are its rows
// (few pixels, see conv.cc). Writing those panels directly is the only copy of the window values.
//
// The panels are read from planes where every window lies inside and adjacent output pixels
// read adjacent floats: the input itself (no padding, stride 1 along W), or else one copy of the
// input with a zero border whose columns are split into stride phases (padded column q in phase
// q % s at q / s). That copy is one pass over the input, a fraction of the K / C_in passes
// im2col makes, and turns each panel row into one or a few plain copies (one per output row the
// panel spans); a strided gather per panel row cost more than the split. 1x1 strided windows
// read the input in place (their gathers touch a 1/s^2 fraction of it).
#pragma once

#include <cstdint>
#include <vector>

#include "ops/conv_geometry.h"
#include "ops/conv_igemm.h"

namespace sliver {
class ThreadPool;
}

namespace sliver::ops {

/// Where im2col reads its inputs: the input planes or their padded, phase-split copy.
struct Im2colSource {
  const float* x = nullptr;  // image 0, channel 0
  int64_t plane = 0;         // floats between channels
  int64_t ld = 0;            // floats between input rows
  int64_t step = 1;          // floats between the inputs of horizontally adjacent outputs
  std::vector<int64_t> tap;  // per window column j: offset of its input (for output column 0)
};

/// The source for a conv of geometry g (window kh x kw) on input x (all images): x itself, or a
/// padded, phase-split copy in the calling thread's scratch slot `slot` (made on `pool`).
Im2colSource im2col_source(const ConvGeom& g, const float* x, int64_t kh, int64_t kw,
                           ThreadPool* pool, int slot);

/// Writes panels [q0, q1) of `width` pixels each (4, 6, 8, 16 or 32) for the input channels at x
/// (cg of them, in.plane apart; one image and group) to dst + q * K * width, K = cg * kh * kw.
/// Panel q covers pixels p0 + q * width ... below p1, or with `tiles`, the pixels of row tile q
/// (tiles->row(q) ..., tiles->rows(q) of them). Columns past a panel's pixels are zeros.
void im2col_panels(int width, const ConvGeom& g, const Im2colSource& in, int64_t cg,
                   const float* x, float* dst, int64_t p0, int64_t p1, int64_t q0, int64_t q1,
                   const RowTiles* tiles = nullptr);

}  // namespace sliver::ops
