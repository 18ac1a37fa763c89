// q8_epilogue_avx2: the tile epilogue of the 8-bit GEMM, 8 columns at a time; bit-identical to
// q8_epilogue_scalar (requant.h gives the float operation order it must keep). One instance per
// output kind, so the per-vector work has no branches but the ragged-edge test.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "sliver/qgemm.h"

namespace sliver {
namespace {

// Keeps the compiler from fusing a product with the following add (-mfma would otherwise be
// allowed to contract them, which changes the rounding the reference defines).
template <class V>
inline V opaque(V v) {
  __asm__("" : "+x"(v));
  return v;
}

inline __m256i lane_mask(int64_t n) {  // first n int32 lanes set
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Stores the first n (1..8) lanes. Full vectors take a plain store: AMD's vpmaskmov stores
// cost tens of cycles, so only the ragged edge pays for a copy.
template <class T, class V>
inline void store_lanes(T* dst, V v, int64_t n) {
  if (n == 8) {
    std::memcpy(dst, &v, sizeof(V));
  } else {
    alignas(32) T tmp[sizeof(V) / sizeof(T)];
    std::memcpy(tmp, &v, sizeof(V));
    std::memcpy(dst, tmp, static_cast<size_t>(n) * sizeof(T));
  }
}

// d = f64(v) * f64(m) + zp (two roundings), clamped, rounded half to even.
inline __m256i requant_f64(__m256i v, const double* m, __m256d zp, __m256d lo, __m256d hi) {
  __m128i half[2];
  for (int h = 0; h < 2; ++h) {
    const __m128i vi = h ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v);
    __m256d d = opaque(_mm256_mul_pd(_mm256_cvtepi32_pd(vi), _mm256_loadu_pd(m + 4 * h)));
    d = _mm256_min_pd(_mm256_max_pd(_mm256_add_pd(d, zp), lo), hi);
    half[h] =
        _mm256_cvttpd_epi32(_mm256_round_pd(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  return _mm256_set_m128i(half[1], half[0]);
}

// f = f32(v) * m clamped to [qmin - zp, qmax - zp], rounded half to even, + zp.
inline __m256i requant_f32(__m256i v, const float* m, __m256 lo, __m256 hi, __m256i zp) {
  __m256 f = opaque(_mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_loadu_ps(m)));
  f = _mm256_round_ps(_mm256_min_ps(_mm256_max_ps(f, lo), hi),
                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm256_add_epi32(_mm256_cvttps_epi32(f), zp);
}

// kKind: 0 int32, 1 requant f64, 2 requant f32, 3 float32.
template <int kKind, bool kBeta>
void epilogue(const Q8EpilogueParams& p, const int32_t* acc, int64_t acc_stride, int64_t mr,
              int64_t nc, int64_t n0, const int32_t* row_term, const int32_t* row_sum, void* c,
              int64_t ldc) {
  const __m256d zp_d = _mm256_set1_pd(p.y_zero_point), lo_d = _mm256_set1_pd(p.qmin),
                hi_d = _mm256_set1_pd(p.qmax);
  const __m256 lo_f = _mm256_set1_ps(static_cast<float>(p.qmin - p.y_zero_point));
  const __m256 hi_f = _mm256_set1_ps(static_cast<float>(p.qmax - p.y_zero_point));
  const __m256i zp_i = _mm256_set1_epi32(p.y_zero_point);
  const bool u8 = p.y_type == DType::u8;
  // Locals, so stores to C (which the compiler must assume may alias p) do not force reloads.
  const int32_t* const col_term = p.col_term + n0;
  const int32_t* const col_beta = p.col_beta + (kBeta ? n0 : 0);
  const float* const col_scale = p.col_scale + (kKind == 2 || kKind == 3 ? n0 : 0);
  const double* const col_scale_f64 = p.col_scale_f64 + (kKind == 1 ? n0 : 0);
  const float* const float_bias = p.float_bias ? p.float_bias + n0 : nullptr;
  // col_* arrays are padded to whole panels; float_bias and C are not.
  for (int64_t i = 0; i < mr; ++i) {
    const __m256i rt = _mm256_set1_epi32(row_term[i]);
    const __m256i rs = _mm256_set1_epi32(kBeta ? row_sum[i] : 0);
    for (int64_t j = 0; j < nc; j += 8) {
      const int64_t cnt = std::min<int64_t>(8, nc - j);
      __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + i * acc_stride + j));
      v = _mm256_add_epi32(_mm256_add_epi32(v, rt),
                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(col_term + j)));
      if (kBeta)
        v = _mm256_add_epi32(
            v, _mm256_mullo_epi32(
                   rs, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(col_beta + j))));
      if (kKind == 0) {
        store_lanes(static_cast<int32_t*>(c) + i * ldc + j, v, cnt);
      } else if (kKind == 3) {
        __m256 y = opaque(_mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_loadu_ps(col_scale + j)));
        if (float_bias)
          y = _mm256_add_ps(y, cnt == 8 ? _mm256_loadu_ps(float_bias + j)
                                        : _mm256_maskload_ps(float_bias + j, lane_mask(cnt)));
        store_lanes(static_cast<float*>(c) + i * ldc + j, y, cnt);
      } else {
        const __m256i q = kKind == 1 ? requant_f64(v, col_scale_f64 + j, zp_d, lo_d, hi_d)
                                     : requant_f32(v, col_scale + j, lo_f, hi_f, zp_i);
        // q lies in [qmin, qmax] inside the output type, so the packs do not saturate.
        const __m128i w =
            _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        const __m128i bytes = u8 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w);
        uint8_t* dst = static_cast<uint8_t*>(c) + i * ldc + j;
        if (cnt == 8) {
          _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), bytes);
        } else {
          alignas(16) uint8_t tmp[16];
          _mm_store_si128(reinterpret_cast<__m128i*>(tmp), bytes);
          std::memcpy(dst, tmp, static_cast<size_t>(cnt));
        }
      }
    }
  }
}

template <int kKind>
Q8EpilogueFn pick_beta(bool beta) {
  return beta ? epilogue<kKind, true> : epilogue<kKind, false>;
}

}  // namespace

void q8_epilogue_avx2(const Q8EpilogueParams& p, const int32_t* acc, int64_t acc_stride, int64_t mr,
                      int64_t nc, int64_t n0, const int32_t* row_term, const int32_t* row_sum,
                      void* c, int64_t ldc) {
  q8_epilogue_avx2_for(p)(p, acc, acc_stride, mr, nc, n0, row_term, row_sum, c, ldc);
}

Q8EpilogueFn q8_epilogue_avx2_for(const Q8EpilogueParams& p) {
  const bool beta = p.col_beta != nullptr;
  switch (p.output) {
    case QGemmOutput::int32:
      return pick_beta<0>(beta);
    case QGemmOutput::float32:
      return pick_beta<3>(beta);
    case QGemmOutput::quantized:
      return p.rounding == RequantRounding::onnx_reference ? pick_beta<1>(beta)
                                                           : pick_beta<2>(beta);
  }
  return pick_beta<0>(beta);
}

}  // namespace sliver
