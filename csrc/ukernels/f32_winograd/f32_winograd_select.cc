// Picks the Winograd transform kernels for this CPU, from f32_winograd.inc.
#include "f32_winograd.h"
#include "sliver/cpu.h"

namespace sliver {
namespace {

const F32WinogradKernel kKernels[] = {
#define SLIVER_F32_WINOGRAD_KERNEL(name, isa) {#name, #isa, name##_input, name##_output},
#include "f32_winograd.inc"
#undef SLIVER_F32_WINOGRAD_KERNEL
};

}  // namespace

const F32WinogradKernel& f32_winograd_kernel() {
  for (const F32WinogradKernel& k : kKernels)
    if (isa_usable(k.isa)) return k;
  return kKernels[sizeof(kKernels) / sizeof(kKernels[0]) - 1];
}

const F32WinogradKernel* find_f32_winograd_kernel(const std::string& name) {
  for (const F32WinogradKernel& k : kKernels)
    if (name == k.name) return &k;
  return nullptr;
}

}  // namespace sliver
