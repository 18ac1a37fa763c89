// q8_vbinary_avx2: 32 elements per step, bit-identical to q8_vbinary_scalar. Each float product
// is kept opaque so -mfma cannot contract it with the following add/sub; the op, the operands'
// code types and which operand repeats are resolved once per call, not per step.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "q8_simd_avx2.h"
#include "q8_vbinary.h"

namespace sliver {
namespace {

using namespace q8_simd_avx2;  // NOLINT(build/namespaces): this folder's helpers

// DQ of 8 codes: (float(c) - zp) * scale, rounded there.
template <bool kSigned>
inline __m256 dequant8(const uint8_t* x, __m256 zp, __m256 scale) {
  return opaque(_mm256_mul_ps(_mm256_sub_ps(load8<kSigned>(x), zp), scale));
}

template <Q8BinaryOp kOp>
inline __m256 apply(__m256 fa, __m256 fb) {
  if constexpr (kOp == Q8BinaryOp::add) return _mm256_add_ps(fa, fb);
  if constexpr (kOp == Q8BinaryOp::sub) return _mm256_sub_ps(fa, fb);
  if constexpr (kOp == Q8BinaryOp::mul) return opaque(_mm256_mul_ps(fa, fb));
  if constexpr (kOp == Q8BinaryOp::div) return _mm256_div_ps(fa, fb);
  if constexpr (kOp == Q8BinaryOp::max) return _mm256_max_ps(fa, fb);  // fa > fb ? fa : fb
  if constexpr (kOp == Q8BinaryOp::min) return _mm256_min_ps(fa, fb);  // fa < fb ? fa : fb
}

// Q(v) then the code clamp, as in q8_vbinary.h: q = v / sy; rne(clamp(q, qmin - zy, qmax - zy))
// + zy clamped to [lo, hi] equals max(rne(min(q, hi - zy)), lo - zy) + zy, because the bounds
// are integers and [lo, hi] lies inside [qmin, qmax]. cvtps2dq turns NaN and q < -2^31 into
// INT_MIN, which the max then takes to lo, as the scalar clamp does.
struct Requant {
  __m256 sy, fhi;
  __m256i ilo, zy;

  explicit Requant(const Q8BinaryParams& p)
      : sy(_mm256_set1_ps(p.y_scale)),
        fhi(_mm256_set1_ps(static_cast<float>(p.hi - p.y_zero_point))),
        ilo(_mm256_set1_epi32(p.lo - p.y_zero_point)),
        zy(_mm256_set1_epi32(p.y_zero_point)) {}

  __m256i operator()(__m256 v) const {
    const __m256 q = _mm256_min_ps(fhi, _mm256_div_ps(v, sy));
    return _mm256_add_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(q), ilo), zy);
  }
};

template <Q8BinaryOp kOp, bool kSa, bool kSb>
void run(const Q8BinaryParams& p, int64_t n, const uint8_t* a, int64_t as, const uint8_t* b,
         int64_t bs, uint8_t* y) {
  const __m256 za = _mm256_set1_ps(static_cast<float>(p.a_zero_point));
  const __m256 sa = _mm256_set1_ps(p.a_scale);
  const __m256 zb = _mm256_set1_ps(static_cast<float>(p.b_zero_point));
  const __m256 sb = _mm256_set1_ps(p.b_scale);
  const Requant rq(p);
  const bool ys = p.y_signed;
  if (as != 0 && bs != 0) {
    drive2(n, a, b, y, [&](const uint8_t* pa, const uint8_t* pb, uint8_t* py) {
      __m256i c[4];
      for (int k = 0; k < 4; ++k)
        c[k] = rq(apply<kOp>(dequant8<kSa>(pa + 8 * k, za, sa), dequant8<kSb>(pb + 8 * k, zb, sb)));
      pack32(c[0], c[1], c[2], c[3], ys, py);
    });
    return;
  }
  // A repeating operand is dequantized once, by the same vector instructions (a broadcast load).
  const uint8_t a8[8] = {a[0], a[0], a[0], a[0], a[0], a[0], a[0], a[0]};
  const uint8_t b8[8] = {b[0], b[0], b[0], b[0], b[0], b[0], b[0], b[0]};
  if (as == 0 && bs == 0) {
    const __m256i c = rq(apply<kOp>(dequant8<kSa>(a8, za, sa), dequant8<kSb>(b8, zb, sb)));
    alignas(32) uint8_t t[32];
    pack32(c, c, c, c, ys, t);
    std::memset(y, t[0], static_cast<size_t>(n));
    return;
  }
  if (as == 0) {
    const __m256 fa = dequant8<kSa>(a8, za, sa);
    drive1(n, b, y, [&](const uint8_t* pb, uint8_t* py) {
      __m256i c[4];
      for (int k = 0; k < 4; ++k) c[k] = rq(apply<kOp>(fa, dequant8<kSb>(pb + 8 * k, zb, sb)));
      pack32(c[0], c[1], c[2], c[3], ys, py);
    });
    return;
  }
  const __m256 fb = dequant8<kSb>(b8, zb, sb);
  drive1(n, a, y, [&](const uint8_t* pa, uint8_t* py) {
    __m256i c[4];
    for (int k = 0; k < 4; ++k) c[k] = rq(apply<kOp>(dequant8<kSa>(pa + 8 * k, za, sa), fb));
    pack32(c[0], c[1], c[2], c[3], ys, py);
  });
}

template <Q8BinaryOp kOp>
void run_op(const Q8BinaryParams& p, int64_t n, const uint8_t* a, int64_t as, const uint8_t* b,
            int64_t bs, uint8_t* y) {
  if (p.a_signed) {
    if (p.b_signed) return run<kOp, true, true>(p, n, a, as, b, bs, y);
    return run<kOp, true, false>(p, n, a, as, b, bs, y);
  }
  if (p.b_signed) return run<kOp, false, true>(p, n, a, as, b, bs, y);
  return run<kOp, false, false>(p, n, a, as, b, bs, y);
}

}  // namespace

void q8_vbinary_avx2(const Q8BinaryParams& p, int64_t n, const uint8_t* a, int64_t a_stride,
                     const uint8_t* b, int64_t b_stride, uint8_t* y) {
  switch (p.op) {
    case Q8BinaryOp::add: return run_op<Q8BinaryOp::add>(p, n, a, a_stride, b, b_stride, y);
    case Q8BinaryOp::sub: return run_op<Q8BinaryOp::sub>(p, n, a, a_stride, b, b_stride, y);
    case Q8BinaryOp::mul: return run_op<Q8BinaryOp::mul>(p, n, a, a_stride, b, b_stride, y);
    case Q8BinaryOp::div: return run_op<Q8BinaryOp::div>(p, n, a, a_stride, b, b_stride, y);
    case Q8BinaryOp::max: return run_op<Q8BinaryOp::max>(p, n, a, a_stride, b, b_stride, y);
    case Q8BinaryOp::min: return run_op<Q8BinaryOp::min>(p, n, a, a_stride, b, b_stride, y);
  }
}

}  // namespace sliver
