// 8-bit depthwise convolution on channels-last images, one output pixel per call.
//
// In NHWC a depthwise window's taps are C-long rows of the input (one per filter position), so an
// output pixel is a weighted sum of `ntaps` rows, channel by channel, with no reduction across
// channels: the vector lanes run along C. The operator (csrc/ops/q8_conv_nhwc.h) hands over one
// row pointer per tap, pointing at a row of x_zero_point codes where the window leaves the image
// (so padding contributes exactly 0), and the per-channel weights with their zero point removed:
//   acc[c] = bias[c] + sum_t (taps[t][c] - x_zp) * w[t * C + c]      exact, int32
//   y[c]   = clamp(round_half_even(f64(acc[c]) * m[c] + zp), lo, hi)  (requant.h, onnx_reference)
// Kernels read exactly C codes from each tap and write C codes of y.
#pragma once

#include <cstdint>
#include <string>

namespace sliver {

struct Q8DwconvParams {
  int32_t x_zero_point = 0;
  const double* multiplier = nullptr;  // [C] float32 requantization multipliers, widened
  double y_zero_point = 0, lo = 0, hi = 255;
  bool signed_out = false;  // y is int8 (else uint8)
};

/// x codes are uint8 (qu8) or int8 (qs8).
using Q8DwconvFn = void (*)(int64_t channels, int ntaps, const void* const* taps, const int32_t* w,
                            const int32_t* bias, const Q8DwconvParams& p, uint8_t* y);

struct Q8DwconvKernel {
  const char* name;  // <dtype>_dwconv_nhwc_<isa>
  bool signed_x;
  const char* isa;
  Q8DwconvFn fn;
};

#define SLIVER_Q8_DWCONV_KERNEL(name, signed_x, isa)                                          \
  void name(int64_t channels, int ntaps, const void* const* taps, const int32_t* w,          \
            const int32_t* bias, const Q8DwconvParams& p, uint8_t* y);
#include "q8_dwconv.inc"
#undef SLIVER_Q8_DWCONV_KERNEL

/// The best usable kernel for uint8 (signed_x false) or int8 inputs.
const Q8DwconvKernel& q8_dwconv_kernel(bool signed_x);
/// The compiled kernel with this name, or nullptr (tests; check isa_usable first).
const Q8DwconvKernel* find_q8_dwconv_kernel(const std::string& name);

}  // namespace sliver
