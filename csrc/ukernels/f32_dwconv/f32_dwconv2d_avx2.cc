// f32_dwconv2d_{3x3,5x5}s{1,2}_avx2: depthwise plane kernels (contract in f32_dwconv.h).
//
// Work goes by columns of 8 outputs: a column's edge masks (which lanes of each tap's load fall
// inside the input row) are the same on every row, so they are computed once per column, and
// only the 1-2 columns at the left and right edges need them; the others use plain loads.
// Stride 2 loads 16 inputs per pair of tap columns and splits them into even and odd columns
// with in-lane shuffles (the outputs then sit in a fixed lane order, undone by one permute
// before the store). Two traversals:
//  - ColumnPlane (narrow planes): each column walks down the plane, two output rows per step
//    (they share K - S input rows), one accumulator per window row of each output row.
//  - RowPlane (wide planes): passes of RR output rows cross the plane column by column, so a
//    pass's input rows stay in L1, with the weights in registers and CH accumulator chains per
//    output row. A wide plane walked by columns evicts the rows the next column reads, and the
//    column walk's per-step row bookkeeping made it load-bound.
#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <utility>

#include "f32_dwconv.h"
#include "ukernels/unroll.h"

namespace sliver {
namespace {

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

// Calls f(j, v) for each tap column j of one input row, v = the inputs tap j multiplies for 8
// consecutive outputs (row points at the first output's window; m: per load, its two halves'
// masks when kMasked). Stride 2 loads 16 inputs per pair of tap columns; its in-lane shuffles
// leave the 8 outputs in the lane order 0 1 4 5 | 2 3 6 7, the same for every tap, and one
// permute per output vector restores it.
template <int K, int S, bool kMasked, class F>
SLIVER_INLINE void row_taps(const float* row, const __m256i (*m)[2], F&& f) {
  if constexpr (S == 1) {
    unroll<K>([&](auto j) SLIVER_ALWAYS { f(j, load<kMasked>(row + j, m[j][0])); });
  } else {
    unroll<(K + 1) / 2>([&](auto pr) SLIVER_ALWAYS {
      constexpr int j = 2 * decltype(pr)::value;
      const __m256 a = load<kMasked>(row + j, m[pr][0]);
      const __m256 b = load<kMasked>(row + j + 8, m[pr][1]);
      f(std::integral_constant<int, j>{}, _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)));
      if constexpr (j + 1 < K)
        f(std::integral_constant<int, j + 1>{}, _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
    });
  }
}

// What both traversals share: the parameters, the weights and clamp broadcast once, the loads'
// reach and edge masks, and the output vector's finish.
template <int K, int S>
struct PlaneBase {
  // Loads of a column: stride 1, one per tap column j (at iw0 + j); stride 2, a pair per two
  // tap columns 2p and 2p + 1 (16 inputs at iw0 + 2p, split into even and odd columns).
  static constexpr int kLoads = S == 1 ? K : (K + 1) / 2;
  static constexpr int kReach = S == 1 ? K + 7 : 2 * ((K - 1) / 2) + 16;  // columns read

  const F32Dwconv2dParams& p;
  __m256 w[K * K];
  __m256 bias, lo, hi;

  explicit PlaneBase(const F32Dwconv2dParams& params) : p(params) {
    for (int t = 0; t < K * K; ++t) w[t] = _mm256_broadcast_ss(p.w + t);
    bias = _mm256_set1_ps(p.bias);
    lo = _mm256_set1_ps(p.lo);
    hi = _mm256_set1_ps(p.hi);
  }

  // Whether the column of outputs from input column iw0 has every load inside the row.
  bool inside(int64_t iw0) const { return iw0 >= 0 && iw0 + kReach <= p.in_w; }

  // The masks of the loads of the column at input column iw0.
  void edge_masks(int64_t iw0, __m256i (*m)[2]) const {
    for (int l = 0; l < kLoads; ++l) {
      const int64_t c = iw0 + (S == 1 ? l : 2 * l);
      m[l][0] = lanes_in(c, p.in_w);
      m[l][1] = lanes_in(c + 8, p.in_w);
    }
  }

  // A summed output vector: lanes back in order (stride 2, see row_taps), then the clamp.
  template <bool kClamp>
  SLIVER_INLINE __m256 finish(__m256 v) const {
    if constexpr (S == 2)
      v = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), _MM_SHUFFLE(3, 1, 2, 0)));
    if constexpr (kClamp) v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
    return v;
  }
};

template <int K, int S>
struct ColumnPlane : PlaneBase<K, S> {
  using B = PlaneBase<K, S>;
  using B::bias, B::edge_masks, B::inside, B::kLoads, B::p, B::w;
  explicit ColumnPlane(const F32Dwconv2dParams& params) : B(params) {}

  // Output rows oh .. oh + R - 1, columns ow0 .. ow0 + 7 (n of them stored); m: per tap column
  // j, the masks of its load (kMasked). Each window row sums into its own accumulator (R * K
  // chains of K FMAs rather than R chains of K * K: the FMA latency would dominate).
  template <int R, bool kMasked, bool kClamp>
  SLIVER_INLINE void step(int64_t oh, int64_t ow0, int64_t n, const __m256i (*m)[2]) const {
    const int64_t iw0 = ow0 * S - p.pad_left;
    __m256 acc[R][K];
    unroll<R>([&](auto q) { unroll<K>([&](auto i) { acc[q][i] = _mm256_setzero_ps(); }); });
    unroll<K + (R - 1) * S>([&](auto r) SLIVER_ALWAYS {
      const int64_t ih = oh * S - p.pad_top + r;
      const float* row = (ih >= 0 && ih < p.in_h ? p.x + ih * p.in_w : p.zero) + iw0;
      auto fma = [&](auto j, __m256 v) SLIVER_ALWAYS {
        unroll<R>([&](auto q) {
          constexpr int i = decltype(r)::value - decltype(q)::value * S;  // window row for q
          if constexpr (i >= 0 && i < K) acc[q][i] = _mm256_fmadd_ps(this->w[i * K + j], v, acc[q][i]);
        });
      };
      row_taps<K, S, kMasked>(row, m, fma);
    });
    const __m256i store_mask = lanes_in(0, n);
    unroll<R>([&](auto q) {
      __m256 v = _mm256_add_ps(this->bias, acc[q][0]);
      unroll<K - 1>([&](auto i) { v = _mm256_add_ps(v, acc[q][i + 1]); });
      v = B::template finish<kClamp>(v);
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
      if (inside(iw0)) {
        any_column<false>(ow0, n, m);
        continue;
      }
      edge_masks(iw0, m);
      any_column<true>(ow0, n, m);
    }
  }
};

template <int K, int S, int CH, int RR>
struct RowPlane : PlaneBase<K, S> {
  using B = PlaneBase<K, S>;
  using B::bias, B::edge_masks, B::inside, B::kLoads, B::p, B::w;
  static constexpr int R = RR;  // output rows per pass
  static constexpr int kRows = K + (R - 1) * S;  // input rows a pass reads
  static constexpr int kChains = CH;
  static constexpr int kMaxEdges = 4;  // edge columns whose masks are kept at once (see run)

  explicit RowPlane(const F32Dwconv2dParams& params) : B(params) {}

  // Output rows q < NR of a pass, columns ow0 .. ow0 + n - 1 (n <= 8), from input rows
  // rows[r] (already offset to the column's first input iw0); m: per load, the masks of its
  // two halves (kMasked). Window row i sums into chain i % CH; consecutive columns are
  // independent and overlap.
  template <int NR, bool kMasked, bool kClamp>
  SLIVER_INLINE void step(const __m256 (&wk)[K * K], const float* const* rows, float* const* y,
                          int64_t n, const __m256i (*m)[2]) const {
    __m256 acc[NR][kChains];
    unroll<NR>([&](auto q) {
      acc[q][0] = this->bias;
      unroll<kChains - 1>([&](auto c) { acc[q][c + 1] = _mm256_setzero_ps(); });
    });
    unroll<K + (NR - 1) * S>([&](auto r) SLIVER_ALWAYS {
      const float* row = rows[r];
      auto fma = [&](auto j, __m256 v) SLIVER_ALWAYS {
        unroll<NR>([&](auto q) {
          constexpr int i = decltype(r)::value - decltype(q)::value * S;  // window row for q
          if constexpr (i >= 0 && i < K)
            acc[q][i % kChains] = _mm256_fmadd_ps(wk[i * K + j], v, acc[q][i % kChains]);
        });
      };
      row_taps<K, S, kMasked>(row, m, fma);
    });
    unroll<NR>([&](auto q) {
      __m256 v = acc[q][0];
      unroll<kChains - 1>([&](auto c) { v = _mm256_add_ps(v, acc[q][c + 1]); });
      v = B::template finish<kClamp>(v);
      if (kMasked && n < 8) _mm256_maskstore_ps(y[q], lanes_in(0, n), v);
      else _mm256_storeu_ps(y[q], v);
    });
  }

  struct Edge {
    int64_t ow0;
    __m256i m[kLoads][2];
  };

  // One pass: output rows oh .. oh + NR - 1 across the plane, interior columns unmasked.
  template <int NR, bool kClamp>
  void pass(int64_t oh, const Edge* edges, int nedges, int64_t in0, int64_t in1) const {
    const float* rows[kRows];
    for (int r = 0; r < K + (NR - 1) * S; ++r) {
      const int64_t ih = oh * S - p.pad_top + r;
      rows[r] = (ih >= 0 && ih < p.in_h ? p.x + ih * p.in_w : p.zero) - p.pad_left;
    }
    float* yrow[R];
    for (int q = 0; q < NR; ++q) yrow[q] = p.y + (oh + q) * p.out_w;
    auto at = [&](int64_t ow0, const float** rr, float** yy) SLIVER_ALWAYS {
      for (int r = 0; r < K + (NR - 1) * S; ++r) rr[r] = rows[r] + ow0 * S;
      for (int q = 0; q < NR; ++q) yy[q] = yrow[q] + ow0;
    };
    // The weights as locals: the compiler cannot keep members in registers across the stores
    // to y (which might alias them), and reloading 9 weights per column made the loop
    // load-bound.
    __m256 wk[K * K];
    for (int t = 0; t < K * K; ++t) wk[t] = w[t];
    const float* rr[kRows];
    float* yy[R];
    for (int e = 0; e < nedges && edges[e].ow0 < in0; ++e) {
      at(edges[e].ow0, rr, yy);
      step<NR, true, kClamp>(wk, rr, yy, std::min<int64_t>(8, p.out_w - edges[e].ow0), edges[e].m);
    }
    for (int64_t ow0 = in0; ow0 < in1; ow0 += 8) {
      at(ow0, rr, yy);
      step<NR, false, kClamp>(wk, rr, yy, 8, nullptr);
    }
    for (int e = 0; e < nedges; ++e) {
      if (edges[e].ow0 < in1) continue;
      at(edges[e].ow0, rr, yy);
      step<NR, true, kClamp>(wk, rr, yy, std::min<int64_t>(8, p.out_w - edges[e].ow0), edges[e].m);
    }
  }

  template <bool kClamp>
  void rows_clamp(const Edge* edges, int nedges, int64_t in0, int64_t in1) const {
    int64_t oh = 0;
    for (; oh + R <= p.out_h; oh += R) pass<R, kClamp>(oh, edges, nedges, in0, in1);
    for (; oh < p.out_h; ++oh) pass<1, kClamp>(oh, edges, nedges, in0, in1);
  }

  void rows_all(const Edge* edges, int nedges, int64_t in0, int64_t in1) const {
    if (p.clamp) rows_clamp<true>(edges, nedges, in0, in1);
    else rows_clamp<false>(edges, nedges, in0, in1);
  }

  // Rows go one pass of R output rows at a time across the columns, so a pass's input rows
  // stay in L1 from column to column. Columns whose loads cross the plane's left or right edge
  // (the first, and the last one to three) take masked loads, with masks computed once here;
  // the interior columns [in0, in1) none. Edge columns are batched kMaxEdges at a time.
  void run() const {
    Edge edges[kMaxEdges];
    int nedges = 0;
    int64_t in0 = -1, in1 = -1;
    for (int64_t ow0 = 0; ow0 < p.out_w; ow0 += 8) {
      const int64_t iw0 = ow0 * S - p.pad_left;
      if (ow0 + 8 <= p.out_w && inside(iw0) && (in0 < 0 || in1 == ow0)) {
        if (in0 < 0) in0 = ow0;
        in1 = ow0 + 8;
        continue;
      }
      if (nedges == kMaxEdges) {
        rows_all(edges, nedges, 0, 0);
        nedges = 0;
      }
      Edge& e = edges[nedges++];
      e.ow0 = ow0;
      edge_masks(iw0, e.m);
    }
    if (in0 < 0) in0 = in1 = 0;
    rows_all(edges, nedges, in0, in1);
  }
};

// Output widths from which the row passes run (narrower planes walk columns): on Zen 3, thread
// time of one hot plane, column walk -> row passes: 3x3 s1 112x112 6.9 -> 4.5 us, 56x56 1.49 ->
// 1.31; 3x3 s2 112 -> 56 2.58 -> 2.24 (96 planes 3.85 -> 2.61); 5x5 s1 112x112 17.9 -> 13.0;
// but 28x28 and smaller ran 1.2-2x slower in passes (all their columns are edge columns).
constexpr int64_t kRowPassMinWidth = 48;

template <int K, int S, int CH, int RR>
void plane(const F32Dwconv2dParams& p) {
  assert(p.pad_top >= 0 && p.pad_top < K && p.pad_left >= 0 && p.pad_left < K);
  assert(p.in_w < (int64_t{1} << 30));
  if (p.out_w >= kRowPassMinWidth) RowPlane<K, S, CH, RR>(p).run();
  else ColumnPlane<K, S>(p).run();
}

}  // namespace

// Row-pass shapes (accumulator chains per output row, output rows per pass), best measured.
void f32_dwconv2d_3x3s1_avx2(const F32Dwconv2dParams& p) { plane<3, 1, 2, 4>(p); }
void f32_dwconv2d_3x3s2_avx2(const F32Dwconv2dParams& p) { plane<3, 2, 1, 3>(p); }
void f32_dwconv2d_5x5s1_avx2(const F32Dwconv2dParams& p) { plane<5, 1, 2, 4>(p); }
void f32_dwconv2d_5x5s2_avx2(const F32Dwconv2dParams& p) { plane<5, 2, 2, 4>(p); }

}  // namespace sliver
