// FP32 depthwise convolution, one output row per call.
//
// A depthwise convolution gives each channel its own small window, so there is no reduction over
// channels to feed a GEMM; it is a stencil. The operator (csrc/ops/conv.cc) turns every output row
// into "taps": for tap t (one weight of the window) a pointer to the n input values that weight
// multiplies, contiguous. Padding, stride and dilation are all absorbed into those pointers (the
// operator pads the plane and, for stride s > 1, splits it into s column phases so that every
// tap's inputs are adjacent), so one kernel contract serves every geometry:
//   y[j] = bias + sum_t w[t] * taps[t][j],  j < n.
// Kernels read exactly n floats from each tap (masked tails) and write n floats of y.
#pragma once

#include <cstdint>
#include <string>

namespace sliver {

using F32DwconvFn = void (*)(int64_t n, int ntaps, const float* const* taps, const float* w,
                             float bias, float* y);

struct F32DwconvKernel {
  const char* name;
  int taps;  // 0 = any number of taps
  const char* isa;
  F32DwconvFn fn;
};

#define SLIVER_F32_DWCONV_KERNEL(name, taps, isa)                                  \
  void name(int64_t n, int ntaps, const float* const* tap_ptrs, const float* w, float bias, \
            float* y);
#include "f32_dwconv.inc"
#undef SLIVER_F32_DWCONV_KERNEL

/// The best usable kernel for windows of `ntaps` taps.
const F32DwconvKernel& f32_dwconv_kernel(int ntaps);
/// The compiled kernel with this name, or nullptr (tests; check isa_usable first).
const F32DwconvKernel* find_f32_dwconv_kernel(const std::string& name);

}  // namespace sliver
