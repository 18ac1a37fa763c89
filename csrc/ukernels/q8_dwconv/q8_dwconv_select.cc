// Picks the NHWC depthwise kernel for this CPU and input type, from q8_dwconv.inc.
#include "q8_dwconv.h"
#include "sliver/cpu.h"

namespace sliver {
namespace {

const Q8DwconvKernel kKernels[] = {
#define SLIVER_Q8_DWCONV_KERNEL(name, signed_x, isa) {#name, signed_x, #isa, name},
#include "q8_dwconv.inc"
#undef SLIVER_Q8_DWCONV_KERNEL
};

}  // namespace

const Q8DwconvKernel& q8_dwconv_kernel(bool signed_x) {
  for (const Q8DwconvKernel& k : kKernels)
    if (k.signed_x == signed_x && isa_usable(k.isa)) return k;
  for (const Q8DwconvKernel& k : kKernels)  // the scalar twins are always usable
    if (k.signed_x == signed_x && std::string(k.isa) == "scalar") return k;
  return kKernels[0];
}

const Q8DwconvKernel* find_q8_dwconv_kernel(const std::string& name) {
  for (const Q8DwconvKernel& k : kKernels)
    if (name == k.name) return &k;
  return nullptr;
}

}  // namespace sliver
