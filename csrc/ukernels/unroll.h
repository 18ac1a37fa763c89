// Compile-time loops for micro-kernels: their accumulators must stay in registers, so loops over
// them are unrolled (unroll<N>(f) calls f(integral_constant<int, I>) for I < N), and the helpers
// around them are forced inline (a call would spill every live vector register).
//
// Everything here has internal linkage (an unnamed namespace): each ISA's translation unit gets
// its own copy compiled with its own flags, so no AVX-512 instance can stand in for an AVX2 one.
#pragma once

#include <utility>

#define SLIVER_INLINE inline __attribute__((always_inline))
#define SLIVER_ALWAYS __attribute__((always_inline))

namespace sliver {
namespace {  // NOLINT(build/namespaces): per translation unit on purpose, see above

template <class F, int... I>
SLIVER_INLINE void unroll_seq(F&& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int N, class F>
SLIVER_INLINE void unroll(F&& f) {
  unroll_seq(f, std::make_integer_sequence<int, N>{});
}

}  // namespace
}  // namespace sliver
