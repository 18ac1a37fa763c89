// Picks the code-table gather kernels for this CPU, from q8_vlut.inc.
#include "q8_vlut.h"
#include "sliver/cpu.h"

namespace sliver {
namespace {

const Q8VLutKernels kKernels[] = {
#define SLIVER_Q8_VLUT_ISA(isa) {#isa, q8_vlut1_##isa, q8_vlut2_##isa},
#include "q8_vlut.inc"
#undef SLIVER_Q8_VLUT_ISA
};

}  // namespace

const Q8VLutKernels& q8_vlut_kernels() {
  for (const Q8VLutKernels& k : kKernels)
    if (isa_usable(k.isa)) return k;
  return kKernels[sizeof(kKernels) / sizeof(kKernels[0]) - 1];  // the scalar twins
}

const Q8VLutKernels* find_q8_vlut_kernels(const std::string& isa) {
  for (const Q8VLutKernels& k : kKernels)
    if (isa == k.isa) return &k;
  return nullptr;
}

}  // namespace sliver
