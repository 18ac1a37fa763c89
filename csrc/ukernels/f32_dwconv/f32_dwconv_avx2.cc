// f32_dwconv_{3x3,kxk}_avx2: depthwise row kernels, 8 outputs per vector (see f32_dwconv.h).
//
// 3x3 keeps the nine weights in registers for the whole row and works on two vectors at a time
// (18 independent FMAs per step); kxk streams the weights, one broadcast per tap and vector pair.
#include <immintrin.h>

#include <cassert>
#include <cstdint>

#include "f32_dwconv.h"

namespace sliver {
namespace {

inline __m256i tail_mask(int64_t left) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(left)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

}  // namespace

void f32_dwconv_3x3_avx2(int64_t n, int ntaps, const float* const* t, const float* w, float bias,
                         float* y) {
  assert(ntaps == 9 && n >= 0);
  (void)ntaps;
  __m256 wv[9];
  for (int k = 0; k < 9; ++k) wv[k] = _mm256_broadcast_ss(w + k);
  const __m256 bv = _mm256_set1_ps(bias);
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    __m256 a0 = bv, a1 = bv;
    for (int k = 0; k < 9; ++k) {
      a0 = _mm256_fmadd_ps(wv[k], _mm256_loadu_ps(t[k] + j), a0);
      a1 = _mm256_fmadd_ps(wv[k], _mm256_loadu_ps(t[k] + j + 8), a1);
    }
    _mm256_storeu_ps(y + j, a0);
    _mm256_storeu_ps(y + j + 8, a1);
  }
  for (; j + 8 <= n; j += 8) {
    __m256 a = bv;
    for (int k = 0; k < 9; ++k) a = _mm256_fmadd_ps(wv[k], _mm256_loadu_ps(t[k] + j), a);
    _mm256_storeu_ps(y + j, a);
  }
  if (j < n) {
    const __m256i m = tail_mask(n - j);
    __m256 a = bv;
    for (int k = 0; k < 9; ++k) a = _mm256_fmadd_ps(wv[k], _mm256_maskload_ps(t[k] + j, m), a);
    _mm256_maskstore_ps(y + j, m, a);
  }
}

void f32_dwconv_kxk_avx2(int64_t n, int ntaps, const float* const* t, const float* w, float bias,
                         float* y) {
  assert(ntaps >= 1 && n >= 0);
  const __m256 bv = _mm256_set1_ps(bias);
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    __m256 a0 = bv, a1 = bv;
    for (int k = 0; k < ntaps; ++k) {
      const __m256 wk = _mm256_broadcast_ss(w + k);
      a0 = _mm256_fmadd_ps(wk, _mm256_loadu_ps(t[k] + j), a0);
      a1 = _mm256_fmadd_ps(wk, _mm256_loadu_ps(t[k] + j + 8), a1);
    }
    _mm256_storeu_ps(y + j, a0);
    _mm256_storeu_ps(y + j + 8, a1);
  }
  for (; j < n; j += 8) {
    const __m256i m = tail_mask(n - j);
    __m256 a = bv;
    for (int k = 0; k < ntaps; ++k)
      a = _mm256_fmadd_ps(_mm256_broadcast_ss(w + k), _mm256_maskload_ps(t[k] + j, m), a);
    _mm256_maskstore_ps(y + j, m, a);
  }
}

}  // namespace sliver
