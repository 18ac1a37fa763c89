// onnxruntime's QLinearAdd / QLinearMul (com.microsoft) on 8-bit codes, computed straight from
// their float formulas instead of a 64 KiB table of every code pair.
//
// Why not the table. A pair table is exact by construction, but each output is a load from
// 64 KiB: twice L1, so a random gather runs at L2 speed, one element at a time. The formulas are
// two fused multiply-adds (Add) or three float ops (Mul) on 8 lanes, and they are exact too as
// long as every float step is the same step: the same operands, the same order, a fused
// multiply-add exactly where MLAS has one (and nowhere else), round half to even, saturate.
//
//  QLinearAdd (ra = sa/sc, rb = sb/sc, all float32):
//    vector-vector and scalar-B runs: v = fma(a, ra, fma(b, rb, fixed)),
//                                     fixed   = zc - fma(ra, za, rb*zb)
//    scalar-A runs:                   v = fma(b, rb, fma(a, ra, fixed_a)),
//                                     fixed_a = zc - fma(rb, zb, ra*za)
//    (a run is scalar-A when A repeats along it; both repeating counts as scalar-A). MLAS only
//    has a scalar-B kernel: onnxruntime runs scalar-A by swapping the operands, which swaps
//    the roles in the fixed part too.
//  QLinearMul (ratio = sa*sb/sc left to right):
//    v = float((a - za)(b - zb)) * ratio + zc      (multiply, round, add, round: no fusion)
//  y = saturate(cvtps2dq(v)) in the code type (v already holds the output zero point):
//      round half to even, and NaN or |v| >= 2^31 become INT_MIN, so qmin. MLAS does not clamp
//      in float first; with extreme scale ratios a huge positive v therefore gives qmin, and
//      so do we (the pair tables clamped and gave qmax there, unlike onnxruntime).
//
// A scalar run folds the repeating operand into the constant once: for Add that is exactly the
// inner fma above; for Mul float(a - za) * float(b - zb) is exact (|product| <= 255^2 < 2^24),
// so the order of its factors cannot matter.
//
// Contract of every kernel: n >= 1 outputs y[0, n); a (b) advances one code per output when its
// stride is 1 and repeats a[0] (b[0]) when it is 0; exactly the n codes of an advancing operand
// are read and exactly n bytes written (tails go through a stack buffer, no over-read).
#pragma once

#include <cstdint>
#include <string>

namespace sliver {

enum class Q8QLinearOp : int { add = 0, mul = 1 };

/// Per-node constants of both formulas (q8_qlinear_params fills the ones its op uses).
struct Q8QLinearParams {
  float ra = 0.f, rb = 0.f, fixed = 0.f, fixed_a = 0.f;  // add
  float za = 0.f, zb = 0.f, ratio = 0.f, zc = 0.f;       // mul
};

/// The constants of `op` from the scales and zero points, rounded as MLAS rounds them.
Q8QLinearParams q8_qlinear_params(Q8QLinearOp op, float sa, int32_t za, float sb, int32_t zb,
                                  float sc, int32_t zc);

using Q8QLinearFn = void (*)(const Q8QLinearParams& p, int64_t n, const uint8_t* a,
                             int64_t a_stride, const uint8_t* b, int64_t b_stride, uint8_t* y);

struct Q8QLinearKernel {
  const char* name;
  Q8QLinearOp op;
  bool is_signed;  // int8 codes (else uint8)
  const char* isa;
  Q8QLinearFn fn;
};

#define SLIVER_Q8_VADDMUL_KERNEL(name, op, is_signed, isa)                                 \
  void name(const Q8QLinearParams& p, int64_t n, const uint8_t* a, int64_t a_stride,      \
            const uint8_t* b, int64_t b_stride, uint8_t* y);
#include "q8_vaddmul.inc"
#undef SLIVER_Q8_VADDMUL_KERNEL

/// The best usable kernel on this CPU for `op` on uint8 or int8 codes.
const Q8QLinearKernel& q8_qlinear_kernel(Q8QLinearOp op, bool is_signed);
/// The compiled kernel with this name, or nullptr (tests; check isa_usable first).
const Q8QLinearKernel* find_q8_qlinear_kernel(const std::string& name);
/// Every compiled kernel, in q8_vaddmul.inc order.
const Q8QLinearKernel* q8_qlinear_kernels(int* count);

}  // namespace sliver
