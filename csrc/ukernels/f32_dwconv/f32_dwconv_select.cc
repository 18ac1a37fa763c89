// Picks the depthwise row kernel for this CPU and window size, from f32_dwconv.inc.
#include <cstring>

#include "f32_dwconv.h"
#include "sliver/cpu.h"

namespace sliver {
namespace {

const F32DwconvKernel kKernels[] = {
#define SLIVER_F32_DWCONV_KERNEL(name, taps, isa) {#name, taps, #isa, name},
#include "f32_dwconv.inc"
#undef SLIVER_F32_DWCONV_KERNEL
};

}  // namespace

const F32DwconvKernel& f32_dwconv_kernel(int ntaps) {
  for (const F32DwconvKernel& k : kKernels)
    if ((k.taps == 0 || k.taps == ntaps) && isa_usable(k.isa)) return k;
  return kKernels[sizeof(kKernels) / sizeof(kKernels[0]) - 1];  // the scalar general kernel
}

const F32DwconvKernel* find_f32_dwconv_kernel(const std::string& name) {
  for (const F32DwconvKernel& k : kKernels)
    if (name == k.name) return &k;
  return nullptr;
}

}  // namespace sliver
