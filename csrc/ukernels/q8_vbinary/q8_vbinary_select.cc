// Picks the 8-bit binary elementwise kernel for this CPU, from q8_vbinary.inc.
#include "q8_vbinary.h"
#include "sliver/cpu.h"

namespace sliver {
namespace {

const Q8VBinaryKernel kKernels[] = {
#define SLIVER_Q8_VBINARY_KERNEL(name, isa) {#name, #isa, name},
#include "q8_vbinary.inc"
#undef SLIVER_Q8_VBINARY_KERNEL
};

}  // namespace

const Q8VBinaryKernel& q8_vbinary_kernel() {
  for (const Q8VBinaryKernel& k : kKernels)
    if (isa_usable(k.isa)) return k;
  return kKernels[sizeof(kKernels) / sizeof(kKernels[0]) - 1];  // the scalar twin
}

const Q8VBinaryKernel* find_q8_vbinary_kernel(const std::string& name) {
  for (const Q8VBinaryKernel& k : kKernels)
    if (name == k.name) return &k;
  return nullptr;
}

}  // namespace sliver
