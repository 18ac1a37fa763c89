// FP32 depthwise convolution, one output row per call.
//
// A depthwise convolution gives each channel its own small window, so there is no reduction over
// channels to feed a GEMM; it is a stencil. The operator (csrc/ops/conv.cc) turns every output row
// into "taps": for tap t (one weight of the window) a pointer to the input values that weight
// multiplies, `stride` apart. Padding and dilation are absorbed into those pointers (the operator
// pads the plane when the window reaches outside it), so one contract serves every geometry:
//   y[j] = bias + sum_t w[t] * taps[t][j * stride],  j < n,  stride 1 or 2
// (larger strides are split into column phases by the operator and run with stride 1). Kernels
// read only the elements they use (masked tails, no over-read) and write n floats of y.
#pragma once

#include <cstdint>
#include <string>

namespace sliver {

using F32DwconvFn = void (*)(int64_t n, int64_t stride, int ntaps, const float* const* taps,
                             const float* w, float bias, float* y);

struct F32DwconvKernel {
  const char* name;
  int taps;  // 0 = any number of taps
  const char* isa;
  F32DwconvFn fn;
};

#define SLIVER_F32_DWCONV_KERNEL(name, taps, isa)                                      \
  void name(int64_t n, int64_t stride, int ntaps, const float* const* tap_ptrs, const float* w, \
            float bias, float* y);
#include "f32_dwconv.inc"
#undef SLIVER_F32_DWCONV_KERNEL

/// The best usable kernel for windows of `ntaps` taps.
const F32DwconvKernel& f32_dwconv_kernel(int ntaps);
/// The compiled kernel with this name, or nullptr (tests; check isa_usable first).
const F32DwconvKernel* find_f32_dwconv_kernel(const std::string& name);

}  // namespace sliver
