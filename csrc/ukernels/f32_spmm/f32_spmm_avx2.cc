// f32_spmm_<NT>x<R>_avx2: FP32 sparse-weight micro-kernels (sparse.h), plus the FP32 panel
// packers and the tile transpose the sparse driver uses on AVX2.
//
// Per block of R output rows, R x NT sums live in R * NT/8 ymm registers while the block's
// entries stream by: an entry is one 16-bit k and R weights, i.e. NT/8 aligned panel loads shared
// by R broadcasts and R * NT/8 FMAs. With few accumulators (R * NT/8 < 8) consecutive entries go
// to U independent accumulator sets, so at least 8 FMA chains hide the 4-cycle FMA latency on
// two pipes; the sets are added at the end (that only reorders the float sums). The vector form
// (NT = 1, one activation column) runs along the block's R rows instead: R = 8 and 4 are one
// FMA per entry, R = 1 is scalar FMAs over four sums.
#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

#include "sliver/sparse.h"
#include "ukernels/unroll.h"
#include "ukernels/f32_transpose8_avx2.h"
#include "ukernels/store_lanes_avx2.h"

namespace sliver {
namespace {

template <Act kAct>
SLIVER_INLINE __m256 act_vec(__m256 x, __m256 a, __m256 b) {
  if constexpr (kAct == Act::relu) return _mm256_max_ps(x, _mm256_setzero_ps());
  if constexpr (kAct == Act::clip) return _mm256_min_ps(_mm256_max_ps(x, a), b);
  if constexpr (kAct == Act::leaky_relu)
    return _mm256_blendv_ps(x, _mm256_mul_ps(x, a),
                            _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
  return x;
}

using avx2::store_lanes;

constexpr int acc_sets(int accumulators) {
  return accumulators >= 8 ? 1 : 8 / accumulators;
}

// Where an entry's activations are: the panel (x + k * NT), a window grid through koff
// (x + koff[k], unaligned) or through offsets resolved per entry (x + eoff[e]).
enum class Rows { panel, koff, eoff };

// kAccIn: start from p.acc_in; kFinal: add the bias and apply kAct (none, relu, clip,
// leaky_relu); kRows: see Rows. All are template parameters so the per-row code has no
// branches but the loop's.
template <int NT, int R, bool kAccIn, bool kFinal, Act kAct, Rows kRows>
void spmm_tile(const F32SpmmArgs& p) {
  constexpr bool kOff = kRows != Rows::panel;
  static_assert(NT % 8 == 0, "tile of whole vectors");
  constexpr int V = NT / 8;
  constexpr int U = acc_sets(R * V);
  static_assert(U * R * V <= 12, "accumulators fit the register file");
  const uint16_t* __restrict kidx = p.kidx;
  const float* __restrict w = p.w;
  const float* __restrict x = p.x;
  const int32_t* __restrict koff = p.koff;
  const int32_t* __restrict eoff = p.eoff;
  const __m256 va = _mm256_set1_ps(p.alpha), vb = _mm256_set1_ps(p.beta);
  const bool full_nt = p.nt == NT;
  static const float kZeros[1] = {0.f};
  const float* bias = p.bias ? p.bias : kZeros;  // bias[row * bias_step]
  const int64_t bias_step = p.bias ? 1 : 0;

  for (int64_t b = 0; b < p.nblocks; ++b) {
    const int64_t row0 = b * R;
    __m256 acc[U][R][V];
    unroll<U>([&](auto u) SLIVER_ALWAYS {
      unroll<R>([&](auto r) SLIVER_ALWAYS {
        unroll<V>([&](auto v) SLIVER_ALWAYS {
          acc[u][r][v] = (u == 0 && kAccIn) ? _mm256_load_ps(p.acc_in + (row0 + r) * NT + 8 * v)
                                            : _mm256_setzero_ps();
        });
      });
    });
    // One entry: V panel loads, R broadcasts, R * V FMAs into accumulator set u.
    auto step = [&](auto u, int64_t e) SLIVER_ALWAYS {
      __m256 xv[V];
      if constexpr (kOff) {
        const float* xr = x + (kRows == Rows::eoff ? eoff[e] : koff[kidx[e]]);
        unroll<V>([&](auto v) SLIVER_ALWAYS { xv[v] = _mm256_loadu_ps(xr + 8 * v); });
      } else {
        const float* xr = x + static_cast<int64_t>(kidx[e]) * NT;
        unroll<V>([&](auto v) SLIVER_ALWAYS { xv[v] = _mm256_load_ps(xr + 8 * v); });
      }
      unroll<R>([&](auto r) SLIVER_ALWAYS {
        const __m256 wv = _mm256_broadcast_ss(w + e * R + r);
        unroll<V>([&](auto v) SLIVER_ALWAYS {
          acc[u][r][v] = _mm256_fmadd_ps(wv, xv[v], acc[u][r][v]);
        });
      });
    };
    int64_t e = p.ptr[b];
    const int64_t e1 = p.ptr[b + 1];
    if constexpr (R == 1) {
      // Unblocked rows are bound by loads (two a cycle on Zen 3, where a broadcast and an index
      // load per entry add half again to the activation loads of NT = 32): groups of four
      // entries take their weights in one 128-bit load, broadcast by in-lane shuffles, and
      // their indices in one 64-bit load. 1.13-1.21x on L1/L2-resident chunks (scratch copy).
      constexpr int S = U <= 4 ? 4 : 8;
      for (; e + S <= e1; e += S) {
        unroll<S / 4>([&](auto g) SLIVER_ALWAYS {
          const __m256 w4 = _mm256_broadcast_ps(reinterpret_cast<const __m128*>(w + e + 4 * g));
          uint64_t ks;  // four 16-bit k, or two of the four resolved offsets
          uint64_t os[2];
          if constexpr (kRows == Rows::eoff) std::memcpy(os, eoff + e + 4 * g, sizeof(os));
          else std::memcpy(&ks, kidx + e + 4 * g, sizeof(ks));
          unroll<4>([&](auto j) SLIVER_ALWAYS {
            constexpr int u = (4 * g + j) % U;
            const float* xr;
            if constexpr (kRows == Rows::eoff) {
              xr = x + static_cast<int32_t>(os[j / 2] >> (32 * (j % 2)));
            } else {
              const int64_t k = static_cast<int64_t>((ks >> (16 * j)) & 0xffff);
              xr = kOff ? x + koff[k] : x + k * NT;
            }
            const __m256 wv = _mm256_shuffle_ps(w4, w4, j * 0x55);
            unroll<V>([&](auto v) SLIVER_ALWAYS {
              const __m256 xv =
                  kOff ? _mm256_loadu_ps(xr + 8 * v) : _mm256_load_ps(xr + 8 * v);
              acc[u][0][v] = _mm256_fmadd_ps(wv, xv, acc[u][0][v]);
            });
          });
        });
      }
    }
    for (; e + U <= e1; e += U) unroll<U>([&](auto u) SLIVER_ALWAYS { step(u, e + u); });
    for (; e < e1; ++e) step(std::integral_constant<int, 0>{}, e);
    unroll<U - 1>([&](auto u1) SLIVER_ALWAYS {
      unroll<R>([&](auto r) SLIVER_ALWAYS {
        unroll<V>([&](auto v) SLIVER_ALWAYS {
          acc[0][r][v] = _mm256_add_ps(acc[0][r][v], acc[u1 + 1][r][v]);
        });
      });
    });
    const bool full_rows = row0 + R <= p.rows;
    unroll<R>([&](auto r) SLIVER_ALWAYS {
      if (!full_rows && row0 + r >= p.rows) return;
      float* yr = p.y + (row0 + r) * p.ldy;
      const __m256 bv = kFinal ? _mm256_broadcast_ss(bias + (row0 + r) * bias_step)
                               : _mm256_setzero_ps();
      unroll<V>([&](auto v) SLIVER_ALWAYS {
        const __m256 t = kFinal ? act_vec<kAct>(_mm256_add_ps(acc[0][r][v], bv), va, vb)
                                : acc[0][r][v];
        if (full_nt) {
          _mm256_storeu_ps(yr + 8 * v, t);
        } else {
          const int64_t n = std::min<int64_t>(8, p.nt - 8 * v);
          if (n > 0) store_lanes(yr + 8 * v, t, n);
        }
      });
    });
  }
}

template <int NT, int R, bool kAccIn, Rows kRows>
void spmm_dispatch(const F32SpmmArgs& p) {
  if (!p.epilogue) return spmm_tile<NT, R, kAccIn, false, Act::none, kRows>(p);
  switch (p.act) {
    case Act::relu: return spmm_tile<NT, R, kAccIn, true, Act::relu, kRows>(p);
    case Act::clip: return spmm_tile<NT, R, kAccIn, true, Act::clip, kRows>(p);
    case Act::leaky_relu: return spmm_tile<NT, R, kAccIn, true, Act::leaky_relu, kRows>(p);
    default: return spmm_tile<NT, R, kAccIn, true, Act::none, kRows>(p);
  }
}

template <int NT, int R, Rows kRows>
void spmm_rows(const F32SpmmArgs& p) {
  if (p.acc_in) spmm_dispatch<NT, R, true, kRows>(p);
  else spmm_dispatch<NT, R, false, kRows>(p);
}

// The vector form's R-wide vector: xmm for R = 4, ymm for R = 8.
template <int R>
struct VecOps;
template <>
struct VecOps<8> {
  using V = __m256;
  V zero() const { return _mm256_setzero_ps(); }
  V load(const float* s) const { return _mm256_loadu_ps(s); }
  V bcast(const float* s) const { return _mm256_broadcast_ss(s); }
  V fma(V a, V b, V c) const { return _mm256_fmadd_ps(a, b, c); }
  V add(V a, V b) const { return _mm256_add_ps(a, b); }
  void store(float* d, V v) const { _mm256_storeu_ps(d, v); }
};
template <>
struct VecOps<4> {
  using V = __m128;
  V zero() const { return _mm_setzero_ps(); }
  V load(const float* s) const { return _mm_loadu_ps(s); }
  V bcast(const float* s) const { return _mm_broadcast_ss(s); }
  V fma(V a, V b, V c) const { return _mm_fmadd_ps(a, b, c); }
  V add(V a, V b) const { return _mm_add_ps(a, b); }
  void store(float* d, V v) const { _mm_storeu_ps(d, v); }
};

// The vector form: one activation column, x[k] at x + k.
template <int R>
void spmv_rows(const F32SpmmArgs& p) {
  const uint16_t* __restrict kidx = p.kidx;
  const float* __restrict w = p.w;
  const float* __restrict x = p.x;
  for (int64_t b = 0; b < p.nblocks; ++b) {
    int64_t e = p.ptr[b];
    const int64_t e1 = p.ptr[b + 1];
    float sums[8];
    if constexpr (R == 1) {
      // Scalar FMAs on four sums (latency); AVX2 gathers measured slower on Zen 3 (3.5 vs ~1.2
      // cycles per entry).
      float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
      for (; e + 4 <= e1; e += 4) {
        s0 = std::fma(w[e], x[kidx[e]], s0);
        s1 = std::fma(w[e + 1], x[kidx[e + 1]], s1);
        s2 = std::fma(w[e + 2], x[kidx[e + 2]], s2);
        s3 = std::fma(w[e + 3], x[kidx[e + 3]], s3);
      }
      for (; e < e1; ++e) s0 = std::fma(w[e], x[kidx[e]], s0);
      sums[0] = (s0 + s1) + (s2 + s3);
    } else {
      // R rows in one vector (R = 4: xmm, R = 8: ymm), four sets against FMA latency.
      VecOps<R> o;
      typename VecOps<R>::V a[4] = {o.zero(), o.zero(), o.zero(), o.zero()};
      for (; e + 4 <= e1; e += 4) {
        unroll<4>([&](auto u) SLIVER_ALWAYS {
          a[u] = o.fma(o.load(w + (e + u) * R), o.bcast(x + kidx[e + u]), a[u]);
        });
      }
      for (; e < e1; ++e) a[0] = o.fma(o.load(w + e * R), o.bcast(x + kidx[e]), a[0]);
      o.store(sums, o.add(o.add(a[0], a[1]), o.add(a[2], a[3])));
    }
    for (int r = 0; r < R; ++r) {
      const int64_t row = b * R + r;
      if (row >= p.rows) break;
      float v = sums[r] + (p.acc_in ? p.acc_in[row] : 0.f);
      if (p.epilogue) {
        if (p.bias) v += p.bias[row];
        v = apply_act(p.act, v, p.alpha, p.beta);
      }
      p.y[row * p.ldy] = v;
    }
  }
}

template <int NT, int R>
void run(const F32SpmmArgs& p) {
  assert(p.nt >= 1 && p.nt <= NT && p.rows <= p.nblocks * R);
  assert(NT == 1 || p.koff || (reinterpret_cast<uintptr_t>(p.x) & 31) == 0);
  assert(NT > 1 || !p.koff);
  assert(!p.eoff || p.koff);
  assert(p.act == Act::none || p.act == Act::relu || p.act == Act::clip ||
         p.act == Act::leaky_relu);
  if constexpr (NT == 1) {
    spmv_rows<R>(p);
  } else if (p.eoff) {
    spmm_rows<NT, R, Rows::eoff>(p);
  } else if (p.koff) {
    spmm_rows<NT, R, Rows::koff>(p);
  } else {
    spmm_rows<NT, R, Rows::panel>(p);
  }
}

// ---- panel packers and the tile transpose ----

void pack_f32_rows(int NT, int64_t kc, int64_t nt, const float* src, int64_t ld, float* dst) {
  for (int64_t k = 0; k < kc; ++k) {
    const float* s = src + k * ld;
    float* d = dst + k * NT;
    int64_t j = 0;
    for (; j + 8 <= nt; j += 8) _mm256_store_ps(d + j, _mm256_loadu_ps(s + j));
    for (; j < nt; ++j) d[j] = s[j];
    for (; j < NT; ++j) d[j] = 0.f;
  }
}

// y[j * ldy + i] = t[i * ldt + j], i < rows, j < cols.
void transpose_f32(int64_t rows, int64_t cols, const float* t, int64_t ldt, float* y,
                   int64_t ldy) {
  int64_t i = 0;
  if (cols == 4) {  // a narrow tile (INT8 batches of 2-4): 4x4 blocks
    for (; i + 4 <= rows; i += 4) {
      __m128 r0 = _mm_loadu_ps(t + i * ldt), r1 = _mm_loadu_ps(t + (i + 1) * ldt);
      __m128 r2 = _mm_loadu_ps(t + (i + 2) * ldt), r3 = _mm_loadu_ps(t + (i + 3) * ldt);
      _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
      _mm_storeu_ps(y + i, r0);
      _mm_storeu_ps(y + ldy + i, r1);
      _mm_storeu_ps(y + 2 * ldy + i, r2);
      _mm_storeu_ps(y + 3 * ldy + i, r3);
    }
  }
  for (; i + 8 <= rows; i += 8) {
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8) {
      __m256 r[8];
      for (int q = 0; q < 8; ++q) r[q] = _mm256_loadu_ps(t + (i + q) * ldt + j);
      avx2::transpose8(r);
      for (int q = 0; q < 8; ++q) _mm256_storeu_ps(y + (j + q) * ldy + i, r[q]);
    }
    for (; j < cols; ++j)
      for (int q = 0; q < 8; ++q) y[j * ldy + i + q] = t[(i + q) * ldt + j];
  }
  for (; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) y[j * ldy + i] = t[i * ldt + j];
}

// dst[k * NT + j] = src[j * ld + k]: the same transpose, into a zero-padded panel.
void pack_f32_cols(int NT, int64_t kc, int64_t nt, const float* src, int64_t ld, float* dst) {
  if (nt < NT)
    for (int64_t k = 0; k < kc; ++k) std::fill(dst + k * NT + nt, dst + k * NT + NT, 0.f);
  transpose_f32(nt, kc, src, ld, dst, NT);
}

}  // namespace

// Defines the .inc lines of this ISA (the isa token selects the macro).
#define SLIVER_SPMM_DEFINE_avx2(name, nt, r) \
  void name(const F32SpmmArgs& p) { run<nt, r>(p); }
#define SLIVER_SPMM_DEFINE_scalar(name, nt, r)
#define SLIVER_SPMM_DEFINE_avx512(name, nt, r)
#define SLIVER_F32_SPMM_KERNEL(name, nt, r, isa) SLIVER_SPMM_DEFINE_##isa(name, nt, r)
#include "f32_spmm.inc"
#undef SLIVER_F32_SPMM_KERNEL

const F32SpmmHelpers kF32SpmmHelpersAvx2 = {pack_f32_rows, pack_f32_cols, transpose_f32};

}  // namespace sliver
