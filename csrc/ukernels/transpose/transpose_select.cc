// Picks the 2-D transpose kernel for this CPU and element size from transpose.inc.
#include "sliver/cpu.h"
#include "transpose.h"

namespace sliver {
namespace {

struct Entry {
  int bytes;
  const char* isa;
  TransposeFn fn;
};

const Entry kKernels[] = {
#define SLIVER_TRANSPOSE_KERNEL(name, bytes, isa) {bytes, #isa, name},
#include "transpose.inc"
#undef SLIVER_TRANSPOSE_KERNEL
};

}  // namespace

TransposeFn transpose_kernel(int bytes) {
  for (const Entry& e : kKernels)
    if (e.bytes == bytes && isa_usable(e.isa)) return e.fn;
  return nullptr;
}

}  // namespace sliver
