// Picks the depthwise row and plane kernels for this CPU and window, from the .inc lists.
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

const F32Dwconv2dKernel kPlaneKernels[] = {
#define SLIVER_F32_DWCONV2D_KERNEL(name, k, stride, isa) {#name, k, stride, #isa, name},
#include "f32_dwconv2d.inc"
#undef SLIVER_F32_DWCONV2D_KERNEL
};

}  // namespace

const F32Dwconv2dKernel* f32_dwconv2d_kernel(int k, int stride) {
  for (const F32Dwconv2dKernel& p : kPlaneKernels)
    if (p.k == k && p.stride == stride && isa_usable(p.isa)) return &p;
  return nullptr;
}

const F32Dwconv2dKernel* find_f32_dwconv2d_kernel(const std::string& name) {
  for (const F32Dwconv2dKernel& p : kPlaneKernels)
    if (name == p.name) return &p;
  return nullptr;
}

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
