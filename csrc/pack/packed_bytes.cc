// Sizes of the dense packed weight layouts (Kernel::weight_bytes): what a kernel holds in memory
// for its weights, padding included, so dense and sparse layers compare like for like.
#include <cstdint>

#include "sliver/gemm.h"
#include "sliver/kernel.h"
#include "sliver/qgemm.h"

namespace sliver {
namespace {
int64_t round_up(int64_t v, int64_t m) { return m > 0 ? (v + m - 1) / m * m : v; }
}  // namespace

int64_t packed_bytes(const PackedA* p) {
  return p ? round_up(p->M, p->mr) * p->K * static_cast<int64_t>(sizeof(float)) : 0;
}

int64_t packed_bytes(const PackedB* p) {
  return p ? round_up(p->N, p->nr) * p->K * static_cast<int64_t>(sizeof(float)) : 0;
}

int64_t packed_bytes(const PackedQ8B* p) {
  if (!p) return 0;
  const int64_t sums = static_cast<int64_t>((p->colsum.size() + p->beta.size()) * sizeof(int32_t));
  const int64_t fixes = static_cast<int64_t>(p->fixes.size() * sizeof(Q8PairFix) +
                                             p->fix_begin.size() * sizeof(int64_t));
  return p->panels() * p->kp * p->nr + sums + fixes +
         static_cast<int64_t>(p->panel_fast_safe.size());
}

}  // namespace sliver
