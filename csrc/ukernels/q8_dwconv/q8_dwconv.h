// 8-bit depthwise convolution on channels-last images, a run of output pixels per call.
//
// In NHWC a depthwise window's taps are C-long rows of the input (one per filter position), so an
// output pixel is a weighted sum of `ntaps` rows, channel by channel, with no reduction across
// channels: the vector lanes run along C. The operator (csrc/ops/q8_conv_nhwc.h) hands over one
// row pointer per tap for the first pixel of a run; every tap advances by `step` bytes per pixel
// (stride * C inside the image; rows of x_zero_point codes stand in for the padding, so it
// contributes exactly 0). Taps go in pairs: two taps' codes interleave into int16 pairs and one
// vpmaddwd multiplies them by the two weights (w - w_zp, in [-255, 255]) of 8 channels at once;
// an odd tap count ends with a pair whose second weight is 0.
//   acc[c] = sum_t x_t[c] * w'_t[c] + col_term[c],  col_term[c] = bias[c] - x_zp * sum_t w'_t[c]
// exact in int32 (|pair| <= 2 * 255 * 255), then requantized per channel (Q8ConvRequant,
// requant.h's onnx_reference order). Kernels read exactly C codes of each tap row per pixel.
#pragma once

#include <cstdint>
#include <string>

#include "sliver/requant.h"

namespace sliver {

struct Q8DwconvArgs {
  int64_t channels = 0;
  int64_t pairs = 0;                     // ceil(ntaps / 2)
  const uint8_t* const* taps = nullptr;  // [2 * pairs] rows of the run's first pixel
  int64_t pixels = 0;                    // output pixels in the run
  int64_t step = 0;                      // bytes every tap row advances per pixel
  // Packed weights, 32-byte aligned: per block of 16 channels, per pair, 32 int16: channels
  // 0-7 as (w'_t, w'_t+1) pairs, then channels 8-15 (zeros past C and past the last tap).
  const int16_t* w = nullptr;
  const Q8ConvRequant* rq = nullptr;     // col_term / multiplier indexed by channel
  uint8_t* y = nullptr;                  // the first pixel's C codes; pixels follow densely
};

/// x codes are uint8 (qu8) or int8 (qs8).
using Q8DwconvFn = void (*)(const Q8DwconvArgs& a);

struct Q8DwconvKernel {
  const char* name;  // <dtype>_dwconv_nhwc_<isa>
  bool signed_x;
  const char* isa;
  Q8DwconvFn fn;
};

#define SLIVER_Q8_DWCONV_KERNEL(name, signed_x, isa) void name(const Q8DwconvArgs& a);
#include "q8_dwconv.inc"
#undef SLIVER_Q8_DWCONV_KERNEL

/// The best usable kernel for uint8 (signed_x false) or int8 inputs.
const Q8DwconvKernel& q8_dwconv_kernel(bool signed_x);
/// The compiled kernel with this name, or nullptr (tests; check isa_usable first).
const Q8DwconvKernel* find_q8_dwconv_kernel(const std::string& name);

}  // namespace sliver
