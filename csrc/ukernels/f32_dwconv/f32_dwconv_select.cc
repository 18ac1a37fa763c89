// Picks the depthwise row, plane and channel-blocked kernels for this CPU and window, from the .inc lists.
#include <cstddef>
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

const F32DwconvC8Kernel kC8Kernels[] = {
#define SLIVER_F32_DWCONV_C8_KERNEL(name, k, stride, isa) {#name, k, stride, #isa, name},
#include "f32_dwconv_c8.inc"
#undef SLIVER_F32_DWCONV_C8_KERNEL
};

// The first usable kernel of a (K, stride) table for this window, or nullptr.
template <class Kernel, size_t N>
const Kernel* best_for(const Kernel (&table)[N], int k, int stride) {
  for (const Kernel& p : table)
    if (p.k == k && p.stride == stride && isa_usable(p.isa)) return &p;
  return nullptr;
}

template <class Kernel, size_t N>
const Kernel* named(const Kernel (&table)[N], const std::string& name) {
  for (const Kernel& p : table)
    if (name == p.name) return &p;
  return nullptr;
}

}  // namespace

const F32DwconvC8Kernel* f32_dwconv_c8_kernel(int k, int stride) {
  return best_for(kC8Kernels, k, stride);
}

const F32DwconvC8Kernel* find_f32_dwconv_c8_kernel(const std::string& name) {
  return named(kC8Kernels, name);
}

const F32Dwconv2dKernel* f32_dwconv2d_kernel(int k, int stride) {
  return best_for(kPlaneKernels, k, stride);
}

bool f32_dwconv2d_kernel_flat(const F32Dwconv2dKernel& k, int64_t in_h, int64_t in_w,
                              int64_t out_h, int64_t out_w) {
  return std::strcmp(k.isa, "avx512") == 0 &&
         f32_dwconv2d_flat(k.stride, in_h, in_w, out_h, out_w);
}

const F32Dwconv2dKernel* find_f32_dwconv2d_kernel(const std::string& name) {
  return named(kPlaneKernels, name);
}

const F32DwconvKernel& f32_dwconv_kernel(int ntaps) {
  for (const F32DwconvKernel& k : kKernels)
    if ((k.taps == 0 || k.taps == ntaps) && isa_usable(k.isa)) return k;
  return kKernels[sizeof(kKernels) / sizeof(kKernels[0]) - 1];  // the scalar general kernel
}

const F32DwconvKernel* find_f32_dwconv_kernel(const std::string& name) {
  return named(kKernels, name);
}

}  // namespace sliver
