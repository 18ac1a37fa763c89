// f32_dwconv_{3x3,kxk}_avx2: depthwise row kernels, 8 outputs per vector (see f32_dwconv.h).
//
// 3x3 keeps the nine weights in registers for the whole row; kxk streams them, one broadcast per
// tap. Both work on two vectors (16 outputs) at a time for independent FMA chains. Stride 2
// loads the 16 inputs that cover 8 outputs and keeps the even ones (a shuffle and a lane permute);
// the second load is masked to 15 floats so nothing past the last used input is read.
#include <immintrin.h>

#include <cassert>
#include <cstdint>

#include "f32_dwconv.h"

namespace sliver {
namespace {

inline __m256i first_lanes(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Inputs p[0], p[S], ..., p[7S] of 8 consecutive outputs.
template <int S>
inline __m256 load8(const float* p) {
  if constexpr (S == 1) {
    return _mm256_loadu_ps(p);
  } else {
    const __m256 a = _mm256_loadu_ps(p);
    const __m256 b = _mm256_maskload_ps(p + 8, first_lanes(7));
    // a0 a2 b0 b2 | a4 a6 b4 b6, then lanes 0 2 1 3 of 64 bits
    const __m256 even = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(even), _MM_SHUFFLE(3, 1, 2, 0)));
  }
}

// kTaps > 0: that many taps with the weights held in registers; 0: ntaps, streamed.
template <int kTaps, int S>
void row(int64_t n, int ntaps, const float* const* t, const float* w, float bias, float* y) {
  constexpr int kRegs = kTaps > 0 ? kTaps : 1;
  const int taps = kTaps > 0 ? kTaps : ntaps;
  __m256 wv[kRegs];
  if constexpr (kTaps > 0)
    for (int k = 0; k < kTaps; ++k) wv[k] = _mm256_broadcast_ss(w + k);
  auto weight = [&](int k) { return kTaps > 0 ? wv[k] : _mm256_broadcast_ss(w + k); };
  const __m256 bv = _mm256_set1_ps(bias);
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    __m256 a0 = bv, a1 = bv;
    for (int k = 0; k < taps; ++k) {
      const __m256 wk = weight(k);
      a0 = _mm256_fmadd_ps(wk, load8<S>(t[k] + j * S), a0);
      a1 = _mm256_fmadd_ps(wk, load8<S>(t[k] + (j + 8) * S), a1);
    }
    _mm256_storeu_ps(y + j, a0);
    _mm256_storeu_ps(y + j + 8, a1);
  }
  for (; j + 8 <= n; j += 8) {
    __m256 a = bv;
    for (int k = 0; k < taps; ++k) a = _mm256_fmadd_ps(weight(k), load8<S>(t[k] + j * S), a);
    _mm256_storeu_ps(y + j, a);
  }
  if (j < n) {
    if constexpr (S == 1) {
      const __m256i m = first_lanes(n - j);
      __m256 a = bv;
      for (int k = 0; k < taps; ++k)
        a = _mm256_fmadd_ps(weight(k), _mm256_maskload_ps(t[k] + j, m), a);
      _mm256_maskstore_ps(y + j, m, a);
    } else {
      for (; j < n; ++j) {
        float a = bias;
        for (int k = 0; k < taps; ++k) a += w[k] * t[k][j * S];
        y[j] = a;
      }
    }
  }
}

}  // namespace

void f32_dwconv_3x3_avx2(int64_t n, int64_t stride, int ntaps, const float* const* t,
                         const float* w, float bias, float* y) {
  assert(ntaps == 9 && n >= 0 && (stride == 1 || stride == 2));
  if (stride == 1) row<9, 1>(n, ntaps, t, w, bias, y);
  else row<9, 2>(n, ntaps, t, w, bias, y);
}

void f32_dwconv_kxk_avx2(int64_t n, int64_t stride, int ntaps, const float* const* t,
                         const float* w, float bias, float* y) {
  assert(ntaps >= 1 && n >= 0 && (stride == 1 || stride == 2));
  if (stride == 1) row<0, 1>(n, ntaps, t, w, bias, y);
  else row<0, 2>(n, ntaps, t, w, bias, y);
}

}  // namespace sliver
