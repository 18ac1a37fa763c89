// Picks the dynamic-quantization kernels for this CPU, from f32_qu8.inc.
#include "f32_qu8.h"
#include "sliver/cpu.h"

namespace sliver {
namespace {

const F32QU8Kernels kKernels[] = {
#define SLIVER_F32_QU8_KERNELS(isa) {#isa, f32_minmax_##isa, f32_qu8_quantize_##isa},
#include "f32_qu8.inc"
#undef SLIVER_F32_QU8_KERNELS
};

}  // namespace

const F32QU8Kernels& f32_qu8_kernels() {
  for (const F32QU8Kernels& k : kKernels)
    if (isa_usable(k.isa)) return k;
  return kKernels[sizeof(kKernels) / sizeof(kKernels[0]) - 1];  // the scalar twins
}

const F32QU8Kernels* find_f32_qu8_kernels(const std::string& isa) {
  for (const F32QU8Kernels& k : kKernels)
    if (isa == k.isa) return &k;
  return nullptr;
}

}  // namespace sliver
