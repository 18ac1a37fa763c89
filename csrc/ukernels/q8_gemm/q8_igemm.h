// 8-bit "indirect GEMM" micro-kernels for convolutions on channels-last images.
//
// What it is. A dense NHWC conv is a GEMM whose A row (one output pixel) is the concatenation
// of ntaps input rows of C bytes (one per filter tap). Instead of copying those rows into an
// im2row matrix and packing it, the kernel gets one pointer per (tap, row) -- straight into the
// image, or into a row of zero-point codes where the window leaves it -- and reads 4 bytes at a
// time. A 1x1 conv is the case ntaps = 1; a conv on very few channels reads rows of a small
// gather buffer instead (ntaps = 1, C = K).
//
// Why int16 products. The kernel widens 4 codes to two int16 pairs with one AND and one shift
// (lo = bytes 0 and 2, hi = bytes 1 and 3) and multiplies them with vpmaddwd by weights that
// already have their zero point removed (w' = w - w_zp, in [-255, 255]): a pair sum is at most
// 2 * 255 * 255, so nothing saturates, for every input and every weight. Codes enter as
// u = x (uint8) or u = x + 128 (int8, one XOR), and the zero point leaves as a column term:
//     acc[m, n] = sum_k (x - x_zp) * w' + bias[n] = sum_k u * w' + col_term[n],
//     col_term[n] = bias[n] - (x_zp + x_shift) * sum_k w'[k, n]              (mod 2^32)
// so there is no row correction and no packing of A at all. vpmaddwd does 16 MACs where the
// exact vpmaddubsw kernel (qgemm.h) needs two multiplies per 32: the same multiply throughput,
// with fewer other instructions and no per-call packing, which is what small convs pay for.
// (Packing A into int16 pairs once per row panel measured no faster up to N = 64: the pack
// costs what it saves in the kernel.)
//
// Tile: 6 rows x 16 columns, 12 accumulators; the weights are read from memory (L1) by the
// multiplies themselves, so the 4 registers left hold the row's codes and the mask.
//
// Tails. A tap's C bytes are read as ceil(C / 4) 4-byte groups; the last group of a ragged C
// is read at offset C - 4 (never past the row) and packing zeroes the weights of the bytes it
// re-reads, so the loop has no tail case. C >= 4 is required.
//
// Packed B (one 16-column panel, 32-byte aligned): for each tap, for each group, 64 int16 in
// four vectors: columns 0-7 as pairs (w'[k0], w'[k2]), columns 0-7 as (w'[k1], w'[k3]), then
// the same for columns 8-15 (zeros past N).
//
// Output: requantized codes, see q8_requant_avx2.h / requant.h (onnx_reference order).
#pragma once

#include <cstdint>
#include <string>

#include "sliver/requant.h"

namespace sliver {

/// One micro-kernel call: an mr x nc tile of Y.
struct Q8IgemmTile {
  int64_t mr = 0, nc = 0;                // 1 <= mr <= 6, 1 <= nc <= 16
  int64_t ntaps = 0;                     // rows per output pixel
  int64_t c = 0;                         // bytes per tap row, >= 4
  const uint8_t* const* rows = nullptr;  // [ntaps][6]: tap t of tile row i at rows[6 t + i]
  const int16_t* b = nullptr;            // the packed panel
  const Q8ConvRequant* rq = nullptr;
  int64_t n0 = 0;        // the tile's first column (indexes rq's arrays)
  uint8_t* y = nullptr;  // element (0, 0) of the tile
  int64_t ldy = 0;       // bytes between rows of Y
};
using Q8IgemmFn = void (*)(const Q8IgemmTile& t);

struct Q8IgemmKernel {
  const char* name;  // <dtype>_igemm_<MR>x<NR>c<KR>_<isa>
  bool signed_x;
  const char* isa;
  Q8IgemmFn fn;
};

constexpr int kQ8IgemmMR = 6, kQ8IgemmNR = 16, kQ8IgemmKR = 4;

#define SLIVER_Q8_IGEMM_KERNEL(name, signed_x, isa) void name(const Q8IgemmTile& t);
#include "q8_igemm.inc"
#undef SLIVER_Q8_IGEMM_KERNEL

/// The best usable kernel for uint8 (signed_x false) or int8 codes; force_scalar picks the twin.
const Q8IgemmKernel& q8_igemm_kernel(bool signed_x, bool force_scalar = false);
/// The compiled kernel with this name, or nullptr (tests; check isa_usable first).
const Q8IgemmKernel* find_q8_igemm_kernel(const std::string& name);

}  // namespace sliver
