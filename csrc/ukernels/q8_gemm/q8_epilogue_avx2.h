// The AVX2 tile epilogue of the 8-bit GEMM, applied by the kernels to accumulators still in
// registers; bit-identical to q8_epilogue_scalar (requant.h gives the float operation order it
// must keep). Include only from *_avx2.cc.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "sliver/qgemm.h"
#include "ukernels/store_lanes_avx2.h"

namespace sliver {
namespace q8avx2 {

// The small helpers below run inside micro-kernels: a call would spill every live accumulator
// (all ymm registers are caller-saved), so they are always inlined.
#define SLIVER_Q8_HELPER inline __attribute__((always_inline))

// Keeps the compiler from fusing a product with the following add (-mfma would otherwise be
// allowed to contract them, which changes the rounding the reference defines).
template <class V>
SLIVER_Q8_HELPER V opaque(V v) {
  __asm__("" : "+x"(v));
  return v;
}

SLIVER_Q8_HELPER __m256i lane_mask(int64_t n) {  // first n int32 lanes set
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

using avx2::store_lanes;

// Packs 8 int32 codes (already inside [qmin, qmax] of the output type, so the packs do not
// saturate) to u8 or s8 and stores the first n (1..8).
SLIVER_Q8_HELPER void store_codes(__m256i q, bool u8, int64_t n, uint8_t* dst) {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  const __m128i bytes = u8 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w);
  if (n == 8) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), bytes);
  } else {
    alignas(16) uint8_t tmp[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), bytes);
    std::memcpy(dst, tmp, static_cast<size_t>(n));
  }
}

struct EpilogueConsts {
  explicit EpilogueConsts(const Q8EpilogueParams& p)
      : zp_d(_mm256_set1_pd(p.y_zero_point)),
        lo_d(_mm256_set1_pd(p.qmin)),
        hi_d(_mm256_set1_pd(p.qmax)),
        lo_f(_mm256_set1_ps(static_cast<float>(p.qmin - p.y_zero_point))),
        hi_f(_mm256_set1_ps(static_cast<float>(p.qmax - p.y_zero_point))),
        zp_magic(_mm256_set1_ps(static_cast<float>(p.y_zero_point) + kMagic)),
        zp_i(_mm256_set1_epi32(p.y_zero_point)),
        lo_i(_mm256_set1_epi32(p.qmin)),
        hi_i(_mm256_set1_epi32(p.qmax)),
        magic_bits(_mm256_set1_epi32(0x4B400000)) {}  // the bits of kMagic
  static constexpr float kMagic = 12582912.0f;          // 1.5 * 2^23
  __m256d zp_d, lo_d, hi_d;
  __m256 lo_f, hi_f, zp_magic;
  __m256i zp_i, lo_i, hi_i, magic_bits;
};

// d = f64(v) * f64(m) + zp (two roundings), clamped, rounded half to even.
inline __m256i requant_f64(__m256i v, const double* m, const EpilogueConsts& k) {
  __m128i half[2];
  for (int h = 0; h < 2; ++h) {
    const __m128i vi = h ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v);
    __m256d d = opaque(_mm256_mul_pd(_mm256_cvtepi32_pd(vi), _mm256_loadu_pd(m + 4 * h)));
    d = _mm256_min_pd(_mm256_max_pd(_mm256_add_pd(d, k.zp_d), k.lo_d), k.hi_d);
    half[h] =
        _mm256_cvttpd_epi32(_mm256_round_pd(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  return _mm256_set_m128i(half[1], half[0]);
}

// f = f32(v) * m clamped to [qmin - zp, qmax - zp], rounded half to even, + zp.
inline __m256i requant_f32(__m256i v, const float* m, const EpilogueConsts& k) {
  __m256 f = opaque(_mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_loadu_ps(m)));
  f = _mm256_round_ps(_mm256_min_ps(_mm256_max_ps(f, k.lo_f), k.hi_f),
                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm256_add_epi32(_mm256_cvttps_epi32(f), k.zp_i);
}

// requant.h's short_f32 form (onnx_reference results where Q8EpilogueParams::form allows it):
// fma32(f32(v), m, zp + 1.5 * 2^23) rounds half to even by itself; the code is the result's
// bits minus those of 1.5 * 2^23, then clamped.
inline __m256i requant_short_f32(__m256i v, const float* m, const EpilogueConsts& k) {
  const __m256 t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_loadu_ps(m), k.zp_magic);
  const __m256i q = _mm256_sub_epi32(_mm256_castps_si256(t), k.magic_bits);
  return _mm256_min_epi32(_mm256_max_epi32(q, k.lo_i), k.hi_i);
}

enum Kind { kInt32, kRequantF64, kRequantF32, kRequantShortF32, kFloat32 };
constexpr bool is_requant(Kind k) {
  return k == kRequantF64 || k == kRequantF32 || k == kRequantShortF32;
}

// The requantizing kind for p (quantized output).
inline Kind requant_kind(const Q8EpilogueParams& p) {
  if (p.rounding != RequantRounding::onnx_reference) return kRequantF32;
  return p.form == RequantForm::short_f32 ? kRequantShortF32 : kRequantF64;
}

// Finishes columns [n, n + cnt) of one row from their corrected int32 sums v.
template <Kind kKind>
inline void finish_vec(const Q8EpilogueParams& p, const EpilogueConsts& k, __m256i v, int64_t n,
                       int64_t cnt, void* dst) {
  if constexpr (kKind == kInt32) {
    store_lanes(static_cast<int32_t*>(dst), v, cnt);
  } else if constexpr (kKind == kFloat32) {
    __m256 y = opaque(_mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_loadu_ps(p.col_scale + n)));
    if (p.float_bias)  // not padded: load only what exists
      y = _mm256_add_ps(y, cnt == 8 ? _mm256_loadu_ps(p.float_bias + n)
                                    : _mm256_maskload_ps(p.float_bias + n, lane_mask(cnt)));
    store_lanes(static_cast<float*>(dst), y, cnt);
  } else {
    const __m256i q = kKind == kRequantF64        ? requant_f64(v, p.col_scale_f64 + n, k)
                      : kKind == kRequantShortF32 ? requant_short_f32(v, p.col_scale + n, k)
                                                  : requant_f32(v, p.col_scale + n, k);
    // q lies in [qmin, qmax] inside the output type, so the packs do not saturate.
    store_codes(q, p.y_type == DType::u8, cnt, static_cast<uint8_t*>(dst));
  }
}

// The per-call constants of one tile.
struct TileConsts {
  TileConsts(const Q8TileArgs& t, const Q8EpilogueParams& p) : k(p) {
    // column arrays are padded to whole panels: full-vector loads are in bounds
    col0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.col_term + t.n0));
    col1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.col_term + t.n0 + 8));
    beta0 = beta1 = _mm256_setzero_si256();
    if (p.col_beta) {
      beta0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.col_beta + t.n0));
      beta1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.col_beta + t.n0 + 8));
    }
  }
  EpilogueConsts k;
  __m256i col0, col1, beta0, beta1;
};

// Finishes row i (columns 0-7 in v0, 8-15 in v1).
template <Kind kKind>
inline void finish_row(const Q8TileArgs& t, const TileConsts& tc, int i, __m256i v0, __m256i v1) {
  const Q8EpilogueParams& p = *t.ep;
  constexpr size_t kElem = is_requant(kKind) ? 1 : 4;
  const __m256i rt = _mm256_set1_epi32(t.row_term[i]);
  v0 = _mm256_add_epi32(_mm256_add_epi32(v0, rt), tc.col0);
  v1 = _mm256_add_epi32(_mm256_add_epi32(v1, rt), tc.col1);
  if (p.col_beta) {
    const __m256i rs = _mm256_set1_epi32(t.row_sum[i]);
    v0 = _mm256_add_epi32(v0, _mm256_mullo_epi32(rs, tc.beta0));
    v1 = _mm256_add_epi32(v1, _mm256_mullo_epi32(rs, tc.beta1));
  }
  uint8_t* row = static_cast<uint8_t*>(t.c) + i * t.ldc * kElem;
  finish_vec<kKind>(p, tc.k, v0, t.n0, std::min<int64_t>(8, t.nc), row);
  if (t.nc > 8) finish_vec<kKind>(p, tc.k, v1, t.n0 + 8, t.nc - 8, row + 8 * kElem);
}

template <int MR, Kind kKind>
inline void finish_rows(const Q8TileArgs& t, __m256i c00, __m256i c01, __m256i c10, __m256i c11,
                        __m256i c20, __m256i c21, __m256i c30, __m256i c31) {
  const TileConsts tc(t, *t.ep);
  finish_row<kKind>(t, tc, 0, c00, c01);
  if constexpr (MR > 1) finish_row<kKind>(t, tc, 1, c10, c11);
  if constexpr (MR > 2) finish_row<kKind>(t, tc, 2, c20, c21);
  if constexpr (MR > 3) finish_row<kKind>(t, tc, 3, c30, c31);
}

inline void store_raw_row(const Q8TileArgs& t, int i, __m256i v0, __m256i v1) {
  int32_t* row = static_cast<int32_t*>(t.c) + i * t.ldc;
  store_lanes(row, v0, std::min<int64_t>(8, t.nc));
  if (t.nc > 8) store_lanes(row + 8, v1, t.nc - 8);
}

// Finishes the tile from its accumulators (cI0 = row I, columns 0-7; cI1 = 8-15). Out of line on
// purpose: the eight vectors travel in ymm0-7 (SysV passes __m256i in registers), and the
// kernel's loop keeps its accumulators in registers (inlined, GCC spilled them to the stack).
template <int MR>
__attribute__((noinline)) void finish_tile(const Q8TileArgs& targs, __m256i c00, __m256i c01,
                                           __m256i c10, __m256i c11, __m256i c20, __m256i c21,
                                           __m256i c30, __m256i c31) {
  const Q8TileArgs t = targs;  // a local copy: stores to C cannot alias it, no reloads
  if (!t.ep) {                 // raw sums
    store_raw_row(t, 0, c00, c01);
    if constexpr (MR > 1) store_raw_row(t, 1, c10, c11);
    if constexpr (MR > 2) store_raw_row(t, 2, c20, c21);
    if constexpr (MR > 3) store_raw_row(t, 3, c30, c31);
    return;
  }
  switch (t.ep->output) {
    case QGemmOutput::int32:
      return finish_rows<MR, kInt32>(t, c00, c01, c10, c11, c20, c21, c30, c31);
    case QGemmOutput::float32:
      return finish_rows<MR, kFloat32>(t, c00, c01, c10, c11, c20, c21, c30, c31);
    case QGemmOutput::quantized:
      switch (requant_kind(*t.ep)) {
        case kRequantF64:
          return finish_rows<MR, kRequantF64>(t, c00, c01, c10, c11, c20, c21, c30, c31);
        case kRequantShortF32:
          return finish_rows<MR, kRequantShortF32>(t, c00, c01, c10, c11, c20, c21, c30, c31);
        default:
          return finish_rows<MR, kRequantF32>(t, c00, c01, c10, c11, c20, c21, c30, c31);
      }
  }
}

#undef SLIVER_Q8_HELPER

}  // namespace q8avx2
}  // namespace sliver
