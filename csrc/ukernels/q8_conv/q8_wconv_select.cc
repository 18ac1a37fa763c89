// Picks the widened-image conv kernel for this CPU, from q8_wconv.inc.
#include <string>

#include "q8_wconv.h"
#include "sliver/cpu.h"

namespace sliver {
namespace {

const Q8WconvKernel kKernels[] = {
#define SLIVER_Q8_WCONV_KERNEL(name, widen, isa) {#name, #isa, name, widen},
#include "q8_wconv.inc"
#undef SLIVER_Q8_WCONV_KERNEL
};

}  // namespace

const Q8WconvKernel& q8_wconv_kernel(bool force_scalar) {
  if (!force_scalar)
    for (const Q8WconvKernel& k : kKernels)
      if (isa_usable(k.isa)) return k;
  for (const Q8WconvKernel& k : kKernels)  // the scalar twin is always usable
    if (std::string(k.isa) == "scalar") return k;
  return kKernels[0];
}

const Q8WconvKernel* find_q8_wconv_kernel(const std::string& name) {
  for (const Q8WconvKernel& k : kKernels)
    if (name == k.name) return &k;
  return nullptr;
}

}  // namespace sliver
