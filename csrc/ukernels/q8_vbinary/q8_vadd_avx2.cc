// qu8_vadd_avx2, qs8_vadd_avx2: QLinearAdd (q8_vaddmul.h), 32 codes per step, every formula
// step an explicit AVX2/FMA instruction so the compiler has nothing to fuse or reorder.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "q8_vaddmul.h"
#include "q8_simd_avx2.h"

namespace sliver {
namespace {

using namespace q8_simd_avx2;  // NOLINT(build/namespaces): this family's helpers

template <bool kSigned>
void vadd(const Q8QLinearParams& p, int64_t n, const uint8_t* a, int64_t as, const uint8_t* b,
          int64_t bs, uint8_t* y) {
  if (as != 0 && bs != 0) {  // v = fma(a, ra, fma(b, rb, fixed))
    const __m256 ra = _mm256_set1_ps(p.ra), rb = _mm256_set1_ps(p.rb);
    const __m256 fixed = _mm256_set1_ps(p.fixed);
    drive2(n, a, b, y, [&](const uint8_t* pa, const uint8_t* pb, uint8_t* py) {
      __m256 v[4];
      for (int k = 0; k < 4; ++k) {
        const __m256 t = _mm256_fmadd_ps(load8<kSigned>(pb + 8 * k), rb, fixed);
        v[k] = _mm256_fmadd_ps(load8<kSigned>(pa + 8 * k), ra, t);
      }
      store32<kSigned>(v[0], v[1], v[2], v[3], py);
    });
    return;
  }
  // A repeats (scalar-A, also when both do): v = fma(b, rb, c), c = fma(a0, ra, fixed_a).
  // B repeats: v = fma(a, ra, c), c = fma(b0, rb, fixed). One fma per code either way.
  const bool scalar_a = as == 0;
  const float c = scalar_a ? std::fma(code<kSigned>(a), p.ra, p.fixed_a)
                           : std::fma(code<kSigned>(b), p.rb, p.fixed);
  const __m256 vc = _mm256_set1_ps(c), r = _mm256_set1_ps(scalar_a ? p.rb : p.ra);
  if (scalar_a && bs == 0) {
    fill<kSigned>(n, _mm256_fmadd_ps(_mm256_set1_ps(code<kSigned>(b)), r, vc), y);
    return;
  }
  drive1(n, scalar_a ? b : a, y, [&](const uint8_t* px, uint8_t* py) {
    __m256 v[4];
    for (int k = 0; k < 4; ++k) v[k] = _mm256_fmadd_ps(load8<kSigned>(px + 8 * k), r, vc);
    store32<kSigned>(v[0], v[1], v[2], v[3], py);
  });
}

}  // namespace

void qu8_vadd_avx2(const Q8QLinearParams& p, int64_t n, const uint8_t* a, int64_t a_stride,
                   const uint8_t* b, int64_t b_stride, uint8_t* y) {
  vadd<false>(p, n, a, a_stride, b, b_stride, y);
}

void qs8_vadd_avx2(const Q8QLinearParams& p, int64_t n, const uint8_t* a, int64_t a_stride,
                   const uint8_t* b, int64_t b_stride, uint8_t* y) {
  vadd<true>(p, n, a, a_stride, b, b_stride, y);
}

}  // namespace sliver
