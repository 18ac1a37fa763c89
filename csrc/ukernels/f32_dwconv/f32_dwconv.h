// FP32 depthwise convolution: row kernels (any window) and plane kernels (3x3, 5x5).
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

// ---------------------------------------------------------------------------------------------
// Plane kernels: one channel plane per call, for the common square windows with stride 1 or 2.
//
// The row kernels above need every tap inside memory, so the operator copies each plane with
// its padding first; that copy and the per-row tap pointers cost more than the arithmetic for
// the small planes of mobile CNNs. A plane kernel reads the unpadded plane directly: rows above
// or below it read `zero` instead, and the chunks of 8 outputs whose windows cross the left or
// right edge use masked loads (masked-off lanes read as 0 and are never accessed). It also
// applies the bias and a clamp (Relu, Relu6/Clip) while the outputs are in registers:
//   y[oh][ow] = clamp(bias + sum_{i,j < K} w[i*K + j] * x[oh*S - pad_top + i][ow*S - pad_left + j])
// with x = 0 outside the plane.
struct F32Dwconv2dParams {
  const float* x;  // input plane, in_h x in_w, rows in_w floats apart
  int64_t in_h, in_w;
  const float* zero;  // in_w zeros, read in place of rows outside the plane
  float* y;           // output plane, out_h x out_w, rows out_w floats apart
  int64_t out_h, out_w;
  int64_t pad_top, pad_left;  // 0 <= pad < K
  const float* w;             // K * K weights, row-major
  float bias;
  bool clamp;      // y = min(max(y, lo), hi) (NaN becomes lo, as in the GEMM epilogue)
  float lo, hi;
  float* scratch;  // f32_dwconv2d_scratch() floats, 64-byte aligned, for this call alone
};
using F32Dwconv2dFn = void (*)(const F32Dwconv2dParams& p);

struct F32Dwconv2dKernel {
  const char* name;
  int k, stride;  // K x K windows, stride S (both axes), dilation 1
  const char* isa;
  F32Dwconv2dFn fn;
};

#define SLIVER_F32_DWCONV2D_KERNEL(name, k, stride, isa) void name(const F32Dwconv2dParams& p);
#include "f32_dwconv2d.inc"
#undef SLIVER_F32_DWCONV2D_KERNEL

// ---------------------------------------------------------------------------------------------
// Channel-blocked plane kernels: 8 channels per call, one channel per vector lane.
//
// On small planes (MobileNetV2's 7x7 to 28x28) a plane kernel's rows are one or two vectors
// whose edges all need masks; with the channels in the lanes every vector is whole. The kernel
// transposes the 8 input planes into a zero-padded [row][column][8] block in `scratch`, runs the
// window over it (4 outputs at a time, K*K FMAs each, no masks), and transposes the
// [pixel][8] results back into the output planes. Each pixel is one FMA chain over the taps in
// row-major window order (the plane kernels sum each window row apart, then the rows), so the
// two round differently within a few ulps; the conv tests bound both against the reference.
struct F32DwconvC8Params {
  const float* x;  // the block's first input plane; plane c at x + c * x_stride
  int64_t x_stride;
  float* y;  // the first output plane; plane c at y + c * y_stride
  int64_t y_stride;
  int nc;  // channels in the block, 1..8
  int64_t in_h, in_w, out_h, out_w;
  int64_t pad_top, pad_left;  // 0 <= pad < K
  const float* w;             // K * K x 8 weights, tap-major: lane c is channel c (pack_c8)
  const float* bias;          // nc biases, or nullptr
  bool clamp;                 // as F32Dwconv2dParams
  float lo, hi;
  float* scratch;  // f32_dwconv_c8_scratch() floats, 32-byte aligned
};
using F32DwconvC8Fn = void (*)(const F32DwconvC8Params& p);

struct F32DwconvC8Kernel {
  const char* name;
  int k, stride;
  const char* isa;
  F32DwconvC8Fn fn;
};

#define SLIVER_F32_DWCONV_C8_KERNEL(name, k, stride, isa) void name(const F32DwconvC8Params& p);
#include "f32_dwconv_c8.inc"
#undef SLIVER_F32_DWCONV_C8_KERNEL

/// The weights of `channels` depthwise channels (w: channel-major, `taps` each) in the
/// channel-blocked kernels' layout: per block of 8 channels, taps x 8 lanes, lanes past the last
/// channel 0. out holds ceil(channels / 8) * taps * 8 floats. Done once when the weights are
/// constants.
inline void pack_dwconv_c8_weights(const float* w, int64_t channels, int taps, float* out) {
  for (int64_t b = 0; b < (channels + 7) / 8; ++b)
    for (int t = 0; t < taps; ++t)
      for (int64_t c = 0; c < 8; ++c) {
        const int64_t ch = b * 8 + c;
        out[(b * taps + t) * 8 + c] = ch < channels ? w[ch * taps + t] : 0.f;
      }
}

/// Floats of scratch a channel-blocked kernel needs for this geometry.
inline int64_t f32_dwconv_c8_scratch(int k, int stride, int64_t in_h, int64_t in_w, int64_t out_h,
                                     int64_t out_w) {
  const int64_t ph = (out_h - 1) * stride + k, pw = (out_w - 1) * stride + k;
  return 8 * (ph * pw + out_h * out_w + in_h * in_w + 16);  // + a whole 8x8 block past each end
}

/// The best usable channel-blocked kernel for K x K windows with this stride, or nullptr.
const F32DwconvC8Kernel* f32_dwconv_c8_kernel(int k, int stride);
/// The compiled channel-blocked kernel with this name, or nullptr (tests).
const F32DwconvC8Kernel* find_f32_dwconv_c8_kernel(const std::string& name);

/// Floats of scratch a plane kernel needs: the AVX-512 stride-2 kernels copy the input plane
/// into its parity planes.
inline int64_t f32_dwconv2d_scratch(int64_t in_h, int64_t in_w) { return in_h * in_w + 16; }

/// Whether the AVX-512 plane kernels run this geometry as one flat pass (else they hand it to
/// the AVX2 ones): stride 1 with the output the input's size, or stride 2 with the input twice
/// the output on both axes (the "same" convs of CNNs, pads 1 on even planes), on planes where
/// that measured faster. Thread CPU time per layer, MobileNetV2's shapes, flat / before:
/// stride 1 112x112 0.8, 56x56 0.5, 28x28 0.65, 14x14 0.7-0.8, 7x7 1.0-1.1 (the per-plane setup
/// weighs against the channel-blocked kernel there); stride 2 56 -> 28 0.55, 28 -> 14 0.8-0.9,
/// but 14 -> 7 1.7 (the parity split costs more than the 49 outputs) and 112 -> 56 1.3 (the
/// AVX2 row passes read the large plane better).
inline bool f32_dwconv2d_flat(int stride, int64_t in_h, int64_t in_w, int64_t out_h,
                              int64_t out_w) {
  const int64_t pixels = out_h * out_w;
  if (out_h <= 0 || out_w <= 0 || in_h != stride * out_h || in_w != stride * out_w) return false;
  if (stride == 1) return pixels >= 10 * 10 && pixels < (int64_t{1} << 30);
  return stride == 2 && pixels >= 12 * 12 && pixels <= 32 * 32;
}

/// Whether plane kernel k runs this geometry as one flat pass (it is an AVX-512 one and
/// f32_dwconv2d_flat holds): then it beats the channel-blocked kernels at every plane size.
bool f32_dwconv2d_kernel_flat(const F32Dwconv2dKernel& k, int64_t in_h, int64_t in_w,
                              int64_t out_h, int64_t out_w);

/// The best usable plane kernel for K x K windows with this stride, or nullptr.
const F32Dwconv2dKernel* f32_dwconv2d_kernel(int k, int stride);
/// The compiled plane kernel with this name, or nullptr (tests; check isa_usable first).
const F32Dwconv2dKernel* find_f32_dwconv2d_kernel(const std::string& name);

/// The best usable kernel for windows of `ntaps` taps.
const F32DwconvKernel& f32_dwconv_kernel(int ntaps);
/// The compiled kernel with this name, or nullptr (tests; check isa_usable first).
const F32DwconvKernel* find_f32_dwconv_kernel(const std::string& name);

}  // namespace sliver
