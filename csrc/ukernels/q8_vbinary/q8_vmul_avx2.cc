// qu8_vmul_avx2, qs8_vmul_avx2: QLinearMul (q8_vaddmul.h), 32 codes per step.
// (a - za) and (b - zb) are exact in float and so is their product (|.| <= 255^2 < 2^24), so
// float((a - za)(b - zb)) is one multiply of the centred codes; the product with ratio is
// rounded before zc is added (opaque), as MLAS does.
#include <immintrin.h>

#include <cstdint>
#include <utility>

#include "q8_vaddmul.h"
#include "q8_simd_avx2.h"

namespace sliver {
namespace {

using namespace q8_simd_avx2;  // NOLINT(build/namespaces): this family's helpers

template <bool kSigned>
void vmul(const Q8QLinearParams& p, int64_t n, const uint8_t* a, int64_t as, const uint8_t* b,
          int64_t bs, uint8_t* y) {
  float za = p.za, zb = p.zb;
  if (as == 0 && bs != 0) {  // the exact product is symmetric: make B the repeating operand
    std::swap(a, b);
    std::swap(as, bs);
    std::swap(za, zb);
  }
  const __m256 vza = _mm256_set1_ps(za), vzb = _mm256_set1_ps(zb);
  const __m256 ratio = _mm256_set1_ps(p.ratio), zc = _mm256_set1_ps(p.zc);
  auto value = [&](__m256 fa, __m256 fb) {  // fa, fb: centred codes
    return _mm256_add_ps(opaque(_mm256_mul_ps(_mm256_mul_ps(fa, fb), ratio)), zc);
  };
  if (bs != 0) {
    drive2(n, a, b, y, [&](const uint8_t* pa, const uint8_t* pb, uint8_t* py) {
      __m256 v[4];
      for (int k = 0; k < 4; ++k)
        v[k] = value(_mm256_sub_ps(load8<kSigned>(pa + 8 * k), vza),
                     _mm256_sub_ps(load8<kSigned>(pb + 8 * k), vzb));
      store32<kSigned>(v[0], v[1], v[2], v[3], py);
    });
    return;
  }
  const __m256 fb = _mm256_set1_ps(code<kSigned>(b) - zb);
  if (as == 0) {
    fill<kSigned>(n, value(_mm256_set1_ps(code<kSigned>(a) - za), fb), y);
    return;
  }
  drive1(n, a, y, [&](const uint8_t* pa, uint8_t* py) {
    __m256 v[4];
    for (int k = 0; k < 4; ++k) v[k] = value(_mm256_sub_ps(load8<kSigned>(pa + 8 * k), vza), fb);
    store32<kSigned>(v[0], v[1], v[2], v[3], py);
  });
}

}  // namespace

void qu8_vmul_avx2(const Q8QLinearParams& p, int64_t n, const uint8_t* a, int64_t a_stride,
                   const uint8_t* b, int64_t b_stride, uint8_t* y) {
  vmul<false>(p, n, a, a_stride, b, b_stride, y);
}

void qs8_vmul_avx2(const Q8QLinearParams& p, int64_t n, const uint8_t* a, int64_t a_stride,
                   const uint8_t* b, int64_t b_stride, uint8_t* y) {
  vmul<true>(p, n, a, a_stride, b, b_stride, y);
}

}  // namespace sliver
