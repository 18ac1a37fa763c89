// 8-bit elementwise binary ops through their float path, exactly:
//
//   y = clamp(Q(DQ(a) op DQ(b)), lo, hi)       DQ(x) = (float(x) - float(zx)) * sx
//                                              Q(v)  = rne(clamp(v / sy, qmin - zy, qmax - zy)) + zy
//
// with every float step rounded to float32 in that order (no fused multiply-add), which is what
// the unfused DequantizeLinear -> Add/Sub/Mul/Div/Max/Min -> QuantizeLinear nodes compute with
// sliver's kernels (and with the spec's). [lo, hi] narrows the output codes for a Relu/Clip that
// followed the op (Q is monotone, so clamping the codes equals quantizing the clamped value).
// One call handles one broadcast run: a and b each advance (stride 1) or repeat (stride 0).
#pragma once

#include <cstdint>
#include <string>

namespace sliver {

enum class Q8BinaryOp : int { add = 0, sub = 1, mul = 2, div = 3, max = 4, min = 5 };

struct Q8BinaryParams {
  Q8BinaryOp op = Q8BinaryOp::add;
  bool a_signed = false, b_signed = false, y_signed = false;  // int8 (else uint8) codes
  float a_scale = 1.f, b_scale = 1.f, y_scale = 1.f;
  int32_t a_zero_point = 0, b_zero_point = 0, y_zero_point = 0;
  int32_t lo = 0, hi = 255;  // output code clamp, within the output type
};

/// n outputs; a (b) advances one code per output when a_stride (b_stride) is 1, else repeats.
using Q8VBinaryFn = void (*)(const Q8BinaryParams& p, int64_t n, const uint8_t* a,
                             int64_t a_stride, const uint8_t* b, int64_t b_stride, uint8_t* y);

struct Q8VBinaryKernel {
  const char* name;
  const char* isa;
  Q8VBinaryFn fn;
};

#define SLIVER_Q8_VBINARY_KERNEL(name, isa)                                                 \
  void name(const Q8BinaryParams& p, int64_t n, const uint8_t* a, int64_t a_stride,        \
            const uint8_t* b, int64_t b_stride, uint8_t* y);
#include "q8_vbinary.inc"
#undef SLIVER_Q8_VBINARY_KERNEL

/// The best usable kernel on this CPU.
const Q8VBinaryKernel& q8_vbinary_kernel();
/// The compiled kernel with this name, or nullptr (tests; check isa_usable first).
const Q8VBinaryKernel* find_q8_vbinary_kernel(const std::string& name);

}  // namespace sliver
