// Picks the binary kernels for this CPU once, from the list in f32_vbinary.inc.
#include <string>

#include "f32_vbinary.h"
#include "sliver/cpu.h"

namespace sliver {
namespace {

constexpr F32VBinaryKernels kScalar[] = {
#define SLIVER_F32_VBINARY(op) {f32_v##op##_vv_scalar, f32_v##op##_vs_scalar},
#include "f32_vbinary.inc"
#undef SLIVER_F32_VBINARY
};
#if defined(__x86_64__) || defined(_M_X64)
constexpr F32VBinaryKernels kAvx2[] = {
#define SLIVER_F32_VBINARY(op) {f32_v##op##_vv_avx2, f32_v##op##_vs_avx2},
#include "f32_vbinary.inc"
#undef SLIVER_F32_VBINARY
};
#endif
static_assert(sizeof(kScalar) / sizeof(kScalar[0]) == static_cast<size_t>(VBinary::count));

const F32VBinaryKernels* table_of(const std::string& isa) {
  if (!isa_usable(isa)) return nullptr;
  if (isa == "scalar") return kScalar;
#if defined(__x86_64__) || defined(_M_X64)
  if (isa == "avx2") return kAvx2;
#endif
  return nullptr;
}

}  // namespace

const F32VBinaryKernels& f32_vbinary(VBinary op) {
  static const F32VBinaryKernels* t = table_of("avx2") ? table_of("avx2") : kScalar;
  return t[static_cast<int>(op)];
}

const F32VBinaryKernels* f32_vbinary_of(VBinary op, const std::string& isa) {
  const F32VBinaryKernels* t = table_of(isa);
  return t ? &t[static_cast<int>(op)] : nullptr;
}

}  // namespace sliver
