// f32_pool_row_{max,sum}_avx2: 8 outputs per step with the accumulator in a register. Stride 1
// reads each tap as one unaligned load; stride 2 loads 16 floats per tap and keeps the even
// lanes (one shuffle, one lane permute); other strides use a gather. The row's last outputs use
// masked loads and stores (strides 1 and 2), so short rows stay vectorised.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "f32_pool.h"

namespace sliver {
namespace {
// NaN in either operand gives NaN: max_ps returns its second operand when either is NaN.
inline __m256 nan_max(__m256 acc, __m256 v) {
  return _mm256_blendv_ps(_mm256_max_ps(acc, v), acc, _mm256_cmp_ps(acc, acc, _CMP_UNORD_Q));
}
// The same on one lane, without branches: pooled values compare at random, and a mispredicted
// branch per tap cost more than the vector part of a row.
inline float nan_max1(float a, float b) {
  const __m128 va = _mm_set_ss(a), vb = _mm_set_ss(b);
  return _mm_cvtss_f32(_mm_blendv_ps(_mm_max_ss(va, vb), va, _mm_cmpunord_ss(va, va)));
}

// The even elements of lo:hi (16 floats) in order.
inline __m256 even_lanes(__m256 lo, __m256 hi) {
  const __m256 ev = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));  // l0 l2 h0 h2 l4 l6 h4 h6
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0)));
}

// x[0], x[s], ..., x[7 s].
inline __m256 load_strided(const float* x, int64_t s, __m256i idx) {
  if (s == 1) return _mm256_loadu_ps(x);
  if (s == 2) return even_lanes(_mm256_loadu_ps(x), _mm256_loadu_ps(x + 8));
  return _mm256_i32gather_ps(x, idx, 4);
}

// Lanes l < n (0 <= n <= 8).
inline __m256i first_lanes(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// load_strided for the last r < 8 outputs of a row (stride 1 or 2): reads only x[0 .. s (r - 1)]
// (masked-off lanes read as 0 and are never stored).
inline __m256 load_strided_tail(const float* x, int64_t s, int64_t r) {
  if (s == 1) return _mm256_maskload_ps(x, first_lanes(r));
  const int64_t last = 2 * (r - 1);  // the last index read
  return even_lanes(_mm256_maskload_ps(x, first_lanes(last + 1)),
                    _mm256_maskload_ps(x + 8, first_lanes(last - 7)));
}

template <bool kMax>
void pool_row(int64_t n, int64_t k, int64_t s, int64_t d, const float* x, float* y) {
  const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                         _mm256_set1_epi32(static_cast<int>(s)));
  // The k taps of the 8 outputs from t, each loaded by load(tap pointer).
  auto window = [&](int64_t t, auto load) {
    const float* p = x + t * s;
    __m256 acc = load(p);
    for (int64_t j = 1; j < k; ++j) {
      const __m256 v = load(p + j * d);
      acc = kMax ? nan_max(acc, v) : _mm256_add_ps(acc, v);
    }
    return acc;
  };
  int64_t t = 0;
  // Stride 2 reads 16 floats per tap: stop where the 16th could pass the last tap's last input.
  const int64_t vec_end = s == 2 ? n - 1 : n;
  for (; t + 8 <= vec_end; t += 8)
    _mm256_storeu_ps(y + t, window(t, [&](const float* p) { return load_strided(p, s, idx); }));
  // The last outputs (and, with stride 2, the one vector whose 16th load could pass the row):
  // masked loads and store, not a scalar loop.
  while (t < n && s <= 2) {
    const int64_t r = std::min<int64_t>(8, n - t);
    _mm256_maskstore_ps(y + t, first_lanes(r),
                        window(t, [&](const float* p) { return load_strided_tail(p, s, r); }));
    t += r;
  }
  for (; t < n; ++t) {
    const float* p = x + t * s;
    float acc = p[0];
    for (int64_t j = 1; j < k; ++j) acc = kMax ? nan_max1(acc, p[j * d]) : acc + p[j * d];
    y[t] = acc;
  }
}
// Vertical max of the kh rows' 8 floats at offset o.
inline __m256 column_max(const float* const* rows, int64_t kh, int64_t o) {
  __m256 acc = _mm256_loadu_ps(rows[0] + o);
  for (int64_t r = 1; r < kh; ++r) acc = nan_max(acc, _mm256_loadu_ps(rows[r] + o));
  return acc;
}
}  // namespace

void f32_pool_rows_max_avx2(int64_t n, int64_t kw, const float* const* rows, int64_t kh,
                            float* y) {
  int64_t t = 0;
  if (kw == 1) {
    for (; t + 8 <= n; t += 8) _mm256_storeu_ps(y + t, column_max(rows, kh, t));
  } else if (kw == 2) {
    for (; t + 8 <= n; t += 8) {
      const __m256 lo = column_max(rows, kh, 2 * t), hi = column_max(rows, kh, 2 * t + 8);
      const __m256 ev = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));  // l0 l2 h0 h2 l4 ..
      const __m256 od = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
      const __m256 m = nan_max(ev, od);
      _mm256_storeu_ps(y + t, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(m),
                                                                     _MM_SHUFFLE(3, 1, 2, 0))));
    }
  }
  for (; t < n; ++t) {
    float acc = rows[0][t * kw];
    for (int64_t r = 0; r < kh; ++r)
      for (int64_t j = r == 0 ? 1 : 0; j < kw; ++j) acc = nan_max1(acc, rows[r][t * kw + j]);
    y[t] = acc;
  }
}

void f32_pool_row_max_avx2(int64_t n, int64_t k, int64_t s, int64_t d, const float* x,
                           float* y) {
  pool_row<true>(n, k, s, d, x, y);
}
void f32_pool_row_sum_avx2(int64_t n, int64_t k, int64_t s, int64_t d, const float* x,
                           float* y) {
  pool_row<false>(n, k, s, d, x, y);
}

}  // namespace sliver
