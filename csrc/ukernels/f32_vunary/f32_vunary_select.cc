// Picks the unary kernels for this CPU once, from the list in f32_vunary.inc.
#include <string>

#include "f32_vunary.h"
#include "sliver/cpu.h"

namespace sliver {
namespace {

constexpr F32VUnaryFn kScalar[] = {
#define SLIVER_F32_VUNARY(op) f32_v##op##_scalar,
#include "f32_vunary.inc"
#undef SLIVER_F32_VUNARY
};
#if defined(__x86_64__) || defined(_M_X64)
constexpr F32VUnaryFn kAvx2[] = {
#define SLIVER_F32_VUNARY(op) f32_v##op##_avx2,
#include "f32_vunary.inc"
#undef SLIVER_F32_VUNARY
};
constexpr F32VUnaryFn kAvx512[] = {
#define SLIVER_F32_VUNARY(op) f32_v##op##_avx512,
#include "f32_vunary.inc"
#undef SLIVER_F32_VUNARY
};
#endif
static_assert(sizeof(kScalar) / sizeof(kScalar[0]) == static_cast<size_t>(VUnary::count));

const F32VUnaryFn* table_of(const std::string& isa) {
  if (!isa_usable(isa)) return nullptr;
  if (isa == "scalar") return kScalar;
#if defined(__x86_64__) || defined(_M_X64)
  if (isa == "avx2") return kAvx2;
  if (isa == "avx512") return kAvx512;
#endif
  return nullptr;
}

const char* selected_isa() {
  static const char* isa = table_of("avx512") ? "avx512" : table_of("avx2") ? "avx2" : "scalar";
  return isa;
}

}  // namespace

F32VUnaryFn f32_vunary(VUnary op) {
  static const F32VUnaryFn* t = table_of(selected_isa());
  return t[static_cast<int>(op)];
}

F32VUnaryFn f32_vunary_of(VUnary op, const std::string& isa) {
  const F32VUnaryFn* t = table_of(isa);
  return t ? t[static_cast<int>(op)] : nullptr;
}

const char* f32_vunary_isa() { return selected_isa(); }

}  // namespace sliver
