// Picks the indirect-GEMM conv kernel for this CPU and code type, from q8_igemm.inc.
#include <string>

#include "q8_igemm.h"
#include "sliver/cpu.h"

namespace sliver {
namespace {

const Q8IgemmKernel kKernels[] = {
#define SLIVER_Q8_IGEMM_KERNEL(name, signed_x, isa) {#name, signed_x, #isa, name},
#include "q8_igemm.inc"
#undef SLIVER_Q8_IGEMM_KERNEL
};

}  // namespace

const Q8IgemmKernel& q8_igemm_kernel(bool signed_x, bool force_scalar) {
  if (!force_scalar)
    for (const Q8IgemmKernel& k : kKernels)
      if (k.signed_x == signed_x && isa_usable(k.isa)) return k;
  for (const Q8IgemmKernel& k : kKernels)  // the scalar twins are always usable
    if (k.signed_x == signed_x && std::string(k.isa) == "scalar") return k;
  return kKernels[0];
}

const Q8IgemmKernel* find_q8_igemm_kernel(const std::string& name) {
  for (const Q8IgemmKernel& k : kKernels)
    if (name == k.name) return &k;
  return nullptr;
}

}  // namespace sliver
