// QLinearAdd / QLinearMul: the constants of the formulas and the kernel for this CPU, from
// q8_vaddmul.inc.
//
// Compiled without -mfma on purpose: the compiler may not contract rb * zb into the fma below
// here, and std::fma rounds once whether or not the instruction exists.
#include <cmath>

#include "q8_vaddmul.h"
#include "sliver/cpu.h"

namespace sliver {
namespace {

const Q8QLinearKernel kKernels[] = {
#define SLIVER_Q8_VADDMUL_KERNEL(name, op, is_signed, isa) \
  {#name, Q8QLinearOp::op, is_signed, #isa, name},
#include "q8_vaddmul.inc"
#undef SLIVER_Q8_VADDMUL_KERNEL
};

}  // namespace

Q8QLinearParams q8_qlinear_params(Q8QLinearOp op, float sa, int32_t za, float sb, int32_t zb,
                                  float sc, int32_t zc) {
  Q8QLinearParams p;
  if (op == Q8QLinearOp::add) {
    p.ra = sa / sc;
    p.rb = sb / sc;
    // The second products round on their own, as in MLAS (volatile: no contraction).
    volatile float rbzb = p.rb * static_cast<float>(zb), raza = p.ra * static_cast<float>(za);
    p.fixed = static_cast<float>(zc) - std::fma(p.ra, static_cast<float>(za), rbzb);
    p.fixed_a = static_cast<float>(zc) - std::fma(p.rb, static_cast<float>(zb), raza);
  } else {
    const float sab = sa * sb;
    p.ratio = sab / sc;
    p.za = static_cast<float>(za);
    p.zb = static_cast<float>(zb);
    p.zc = static_cast<float>(zc);
  }
  return p;
}

const Q8QLinearKernel& q8_qlinear_kernel(Q8QLinearOp op, bool is_signed) {
  for (const Q8QLinearKernel& k : kKernels)
    if (k.op == op && k.is_signed == is_signed && isa_usable(k.isa)) return k;
  return kKernels[0];  // unreachable: every (op, type) has a scalar kernel
}

const Q8QLinearKernel* find_q8_qlinear_kernel(const std::string& name) {
  for (const Q8QLinearKernel& k : kKernels)
    if (name == k.name) return &k;
  return nullptr;
}

const Q8QLinearKernel* q8_qlinear_kernels(int* count) {
  *count = static_cast<int>(sizeof(kKernels) / sizeof(kKernels[0]));
  return kKernels;
}

}  // namespace sliver
