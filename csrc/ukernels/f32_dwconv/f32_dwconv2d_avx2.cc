// f32_dwconv2d_{3x3,5x5}s{1,2}_avx2: depthwise plane kernels (contract in f32_dwconv.h).
//
// Work goes by columns of 8 outputs: a column's edge masks (which lanes of each tap's load fall
// inside the input row) are the same on every row, so they are computed once per column, and
// only the 1-2 columns at the left and right edges need them; the others use plain loads. Two
// output rows are computed per step: they share K - S of their input rows (stride 1: 4 rows
// loaded for 2 x 3 rows of taps), and each window row of each output row has its own
// accumulator, so 2 K independent FMA chains hide the FMA latency. The weights stay in
// registers (3x3) or are FMA memory operands (5x5). Stride 2 loads 16 inputs per pair of tap
// columns and splits them into even and odd columns with in-lane shuffles (the outputs then sit
// in a fixed lane order, undone by one permute before the store).
#include <immintrin.h>

#include <cassert>
#include <cstdint>
#include <utility>

#include "f32_dwconv.h"

namespace sliver {
namespace {

#define SLIVER_INLINE inline __attribute__((always_inline))
#define SLIVER_ALWAYS __attribute__((always_inline))

template <class F, int... I>
SLIVER_INLINE void unroll_seq(F&& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int N, class F>
SLIVER_INLINE void unroll(F&& f) {
  unroll_seq(f, std::make_integer_sequence<int, N>{});
}

// Lanes l (0..7) whose column c + l lies in [0, hi).
inline __m256i lanes_in(int64_t c, int64_t hi) {
  const __m256i col = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(c)),
                                       _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  return _mm256_and_si256(_mm256_cmpgt_epi32(col, _mm256_set1_epi32(-1)),
                          _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(hi)), col));
}

// kMasked: only the lanes of m (the others read as 0 and are never accessed).
template <bool kMasked>
SLIVER_INLINE __m256 load(const float* p, __m256i m) {
  return kMasked ? _mm256_maskload_ps(p, m) : _mm256_loadu_ps(p);
}

template <int K, int S>
struct Plane {
  const F32Dwconv2dParams& p;
  __m256 w[K * K];
  __m256 bias, lo, hi;

  explicit Plane(const F32Dwconv2dParams& params) : p(params) {
    for (int t = 0; t < K * K; ++t) w[t] = _mm256_broadcast_ss(p.w + t);
    bias = _mm256_set1_ps(p.bias);
    lo = _mm256_set1_ps(p.lo);
    hi = _mm256_set1_ps(p.hi);
  }

  // Loads of a column: stride 1, one per tap column j (at iw0 + j); stride 2, a pair per two
  // tap columns 2p and 2p + 1 (16 inputs at iw0 + 2p, split into even and odd columns).
  static constexpr int kLoads = S == 1 ? K : (K + 1) / 2;
  static constexpr int kReach = S == 1 ? K + 7 : 2 * ((K - 1) / 2) + 16;  // columns read

  // Output rows oh .. oh + R - 1, columns ow0 .. ow0 + 7 (n of them stored); m: per tap column
  // j, the masks of its load (kMasked). Each window row sums into its own accumulator (R * K
  // chains of K FMAs rather than R chains of K * K: the FMA latency would dominate).
  template <int R, bool kMasked, bool kClamp>
  SLIVER_INLINE void step(int64_t oh, int64_t ow0, int64_t n, const __m256i (*m)[2]) const {
    const int64_t iw0 = ow0 * S - p.pad_left;
    __m256 acc[R][K];
    unroll<R>([&](auto q) { unroll<K>([&](auto i) { acc[q][i] = _mm256_setzero_ps(); }); });
    unroll<K + (R - 1) * S>([&](auto r) {
      const int64_t ih = oh * S - p.pad_top + r;
      const float* row = (ih >= 0 && ih < p.in_h ? p.x + ih * p.in_w : p.zero) + iw0;
      auto fma = [&](auto j, __m256 v) SLIVER_ALWAYS {
        unroll<R>([&](auto q) {
          constexpr int i = decltype(r)::value - decltype(q)::value * S;  // window row for q
          if constexpr (i >= 0 && i < K) acc[q][i] = _mm256_fmadd_ps(w[i * K + j], v, acc[q][i]);
        });
      };
      if constexpr (S == 1) {
        unroll<K>([&](auto j) { fma(j, load<kMasked>(row + j, m[j][0])); });
      } else {
        // In-lane shuffles leave the 8 outputs in the lane order 0 1 4 5 | 2 3 6 7, the same
        // for every tap; one permute per output vector restores it.
        unroll<kLoads>([&](auto pr) {
          constexpr int j = 2 * decltype(pr)::value;
          const __m256 a = load<kMasked>(row + j, m[pr][0]);
          const __m256 b = load<kMasked>(row + j + 8, m[pr][1]);
          fma(std::integral_constant<int, j>{}, _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)));
          if constexpr (j + 1 < K)
            fma(std::integral_constant<int, j + 1>{},
                _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
        });
      }
    });
    const __m256i store_mask = lanes_in(0, n);
    unroll<R>([&](auto q) {
      __m256 v = _mm256_add_ps(bias, acc[q][0]);
      unroll<K - 1>([&](auto i) { v = _mm256_add_ps(v, acc[q][i + 1]); });
      if constexpr (S == 2)
        v = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), _MM_SHUFFLE(3, 1, 2, 0)));
      if constexpr (kClamp) v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
      float* y = p.y + (oh + q) * p.out_w + ow0;
      if (n == 8) _mm256_storeu_ps(y, v);
      else _mm256_maskstore_ps(y, store_mask, v);
    });
  }

  template <bool kMasked, bool kClamp>
  void column(int64_t ow0, int64_t n, const __m256i (*m)[2]) const {
    int64_t oh = 0;
    for (; oh + 2 <= p.out_h; oh += 2) step<2, kMasked, kClamp>(oh, ow0, n, m);
    if (oh < p.out_h) step<1, kMasked, kClamp>(oh, ow0, n, m);
  }

  template <bool kMasked>
  void any_column(int64_t ow0, int64_t n, const __m256i (*m)[2]) const {
    if (p.clamp) column<kMasked, true>(ow0, n, m);
    else column<kMasked, false>(ow0, n, m);
  }

  void run() const {
    __m256i m[kLoads][2];
    for (int64_t ow0 = 0; ow0 < p.out_w; ow0 += 8) {
      const int64_t n = std::min<int64_t>(8, p.out_w - ow0), iw0 = ow0 * S - p.pad_left;
      if (iw0 >= 0 && iw0 + kReach <= p.in_w) {
        any_column<false>(ow0, n, m);
        continue;
      }
      for (int l = 0; l < kLoads; ++l) {
        const int64_t c = iw0 + (S == 1 ? l : 2 * l);
        m[l][0] = lanes_in(c, p.in_w);
        m[l][1] = lanes_in(c + 8, p.in_w);
      }
      any_column<true>(ow0, n, m);
    }
  }
};

template <int K, int S>
void plane(const F32Dwconv2dParams& p) {
  assert(p.pad_top >= 0 && p.pad_top < K && p.pad_left >= 0 && p.pad_left < K);
  assert(p.in_w < (int64_t{1} << 30));
  Plane<K, S>(p).run();
}

}  // namespace

void f32_dwconv2d_3x3s1_avx2(const F32Dwconv2dParams& p) { plane<3, 1>(p); }
void f32_dwconv2d_3x3s2_avx2(const F32Dwconv2dParams& p) { plane<3, 2>(p); }
void f32_dwconv2d_5x5s1_avx2(const F32Dwconv2dParams& p) { plane<5, 1>(p); }
void f32_dwconv2d_5x5s2_avx2(const F32Dwconv2dParams& p) { plane<5, 2>(p); }

}  // namespace sliver
