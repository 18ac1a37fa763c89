// Picks the 32-bit transpose kernel for this CPU from x32_transpose.inc.
#include "sliver/cpu.h"
#include "x32_transpose.h"

namespace sliver {
namespace {

struct Entry {
  const char* isa;
  X32TransposeFn fn;
};

const Entry kKernels[] = {
#define SLIVER_X32_TRANSPOSE_KERNEL(name, isa) {#isa, name},
#include "x32_transpose.inc"
#undef SLIVER_X32_TRANSPOSE_KERNEL
};

}  // namespace

X32TransposeFn x32_transpose_kernel() {
  for (const Entry& e : kKernels)
    if (isa_usable(e.isa)) return e.fn;
  return x32_transpose_scalar;
}

}  // namespace sliver
