// 8-bit convolution micro-kernels on a widened image ("wconv"), for channels-last convs.
//
// The idea. Before the products, the conv's input is widened once per call into a padded
// int16 image holding x - x_zp: the zero point leaves there, and so does the padding (a row of
// zeros contributes 0), so the kernel has no border case, no zero-point column term and no
// per-code unpacking. In that image the KW * C values a filter row reads for one output pixel
// are contiguous (dilation 1; C values per tap otherwise): a "segment". The kernel walks a
// segment as int16 pairs: one 4-byte broadcast from the image gives one pair for all columns,
// and vpmaddwd multiplies it by the pair's weights (w' = w - w_zp, also int16) for 8 columns.
// Per pair and output pixel that is 2 vpmaddwd + 2 vpaddd for 16 columns and a broadcast that
// is only a load. Measured on Zen 3 (no VNNI), vpmaddwd + vpaddd pairs run at ~1.6 multiplies
// per cycle (the adds share the multipliers' pipes): ~25 MACs per cycle, ~70 GMAC/s on 3x3
// layers of 16-64 channels. The byte-reading indirect GEMM this replaced also spent a shift and
// an AND per 4 bytes and row (~56 GMAC/s at best, ~45 in models), and its first-layer path
// gathered every window into a buffer (6 GMAC/s on one channel; now ~20). Widening costs ~0.1
// cycle per input value, paid once per value, not once per tap. (vpmaddubsw chains, 32 MACs
// per 3 instructions, are faster but saturate unless every weight pair has |w0| + |w1| <= 128,
// which quantized weights seldom satisfy.)
//
// Exactness: |x - x_zp| <= 255 and |w'| <= 255, so a pair sum is below 2^17 and every int32
// accumulator is the reference's int32 sum (wrapping mod 2^32 the same way when K is huge).
//
// An odd segment length reads one value past the segment (the next pixel's or the slack the
// caller leaves after the image) against a zero weight. The caller flattens the segments into
// one list of pair offsets (from a pixel's base), so a call is one loop however the window is
// cut.
//
// Packed B (one 16-column panel, 32-byte aligned): for each pair, 32 int16: accumulator slots
// 0-7 as (w'[2p], w'[2p + 1]), then slots 8-15 (zeros past N or past the segment). A panel of
// more than 8 columns puts column j in slot q8_wconv_slot(j): columns 0-3 and 8-11 in the first
// vector, 4-7 and 12-15 in the second, so the in-lane int32 -> int16 pack of the two vectors
// comes out in column order (one pack instead of two extracts and two packs per row); a panel
// of at most 8 columns keeps them in order in the first vector. The per-column requantization
// arrays (col_term, multipliers) are in the same slot order.
//
// Output: requantized codes (requant.h's onnx_reference order, q8_requant_avx2.h's forms).
#pragma once

#include <cstdint>
#include <string>

#include "sliver/requant.h"

namespace sliver {

constexpr int kQ8WconvMR = 6, kQ8WconvNR = 16;

/// The accumulator slot of column j (0-15) in a panel of nc columns (see above).
constexpr int64_t q8_wconv_slot(int64_t j, int64_t nc) {
  return nc <= 8 ? j : (j / 4 % 2) * 8 + (j / 8) * 4 + j % 4;
}

/// One micro-kernel call: `pixels` rows x nc columns of Y, in tiles of 6 rows (one call per
/// block of pixels and panel, so the per-call setup -- requantization constants, column terms,
/// the frame -- is paid once per block, which matters for 1x1 convs on 16-32 channels).
struct Q8WconvBlock {
  int64_t pixels = 0, nc = 0;              // pixels >= 1, 1 <= nc <= 16
  const int16_t* const* px = nullptr;      // [pixels] each row's pixel base in the image
  const int64_t* pair_off = nullptr;       // [npairs] offsets (int16 elements) from a pixel base
  int64_t npairs = 0;                      // >= 1
  const int16_t* b = nullptr;              // the packed panel
  const Q8ConvRequant* rq = nullptr;       // arrays in slot order
  int64_t n0 = 0;        // the panel's first column (indexes rq's arrays)
  uint8_t* y = nullptr;  // element (0, 0) of the block
  int64_t ldy = 0;       // bytes between rows of Y
};
using Q8WconvFn = void (*)(const Q8WconvBlock& a);

/// dst[i c + k] = code - zp (int16) for the c codes k of n pixels i, read from src[i c + k]
/// (plane == 0: channels last) or src[k plane + i] (planes: a row of an NCHW image); int8
/// codes when signed_x.
using Q8WidenFn = void (*)(const uint8_t* src, int64_t n, int64_t c, int64_t plane,
                           bool signed_x, int32_t zp, int16_t* dst);

struct Q8WconvKernel {
  const char* name;  // q8_wconv_<MR>x<NR>c2_<isa>
  const char* isa;
  Q8WconvFn fn;
  Q8WidenFn widen;
};

#define SLIVER_Q8_WCONV_KERNEL(name, widen, isa)                                   \
  void name(const Q8WconvBlock& a);                                                \
  void widen(const uint8_t* src, int64_t n, int64_t c, int64_t plane, bool signed_x, \
             int32_t zp, int16_t* dst);
#include "q8_wconv.inc"
#undef SLIVER_Q8_WCONV_KERNEL

/// The best usable kernel; force_scalar picks the portable twin.
const Q8WconvKernel& q8_wconv_kernel(bool force_scalar = false);
/// The compiled kernel with this name, or nullptr.
const Q8WconvKernel* find_q8_wconv_kernel(const std::string& name);

}  // namespace sliver
