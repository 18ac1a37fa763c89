// f32_spmm_<NT>x<R>_avx512: the AVX2 sparse-weight kernels (f32_spmm_avx2.cc) in zmm.
//
// A broadcast weight now feeds 16 lanes per FMA, and the 32 registers hold twice the sums, so
// the tiles grow with the blocks (32 lanes for R = 4, 16 and 32 for R = 8): per entry, NT/16
// panel loads and R broadcasts for R * NT/16 FMAs. The AVX2 kernels broadcast groups of four
// weights with in-lane shuffles to spare loads (Zen 3); on Intel cores shuffles share port 5 with
// the second 512-bit FMA, while a broadcast from memory only takes a load port (three of them),
// so every weight is its own broadcast load here. Partial tiles store through a lane mask. The
// vector form (NT = 1) and 8-lane tiles stay AVX2: ymm is as wide as they need.
#include <immintrin.h>

#include <cassert>
#include <cstdint>
#include <cstring>
#include <utility>

#include "sliver/sparse.h"
#include "ukernels/unroll.h"

namespace sliver {
namespace {

template <Act kAct>
SLIVER_INLINE __m512 act_vec(__m512 x, __m512 a, __m512 b) {
  if constexpr (kAct == Act::relu) return _mm512_max_ps(x, _mm512_setzero_ps());
  if constexpr (kAct == Act::clip) return _mm512_min_ps(_mm512_max_ps(x, a), b);
  if constexpr (kAct == Act::leaky_relu)
    return _mm512_mask_mul_ps(x, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), x, a);
  return x;
}

// Two 512-bit FMA pipes of 4-cycle latency want 8 independent chains.
constexpr int acc_sets(int accumulators) {
  return accumulators >= 8 ? 1 : 8 / accumulators;
}

enum class Rows { panel, koff, eoff };  // as in f32_spmm_avx2.cc

template <int NT, int R, bool kAccIn, bool kFinal, Act kAct, Rows kRows>
void spmm_tile(const F32SpmmArgs& p) {
  constexpr bool kOff = kRows != Rows::panel;
  static_assert(NT % 16 == 0, "tile of whole vectors");
  constexpr int V = NT / 16;
  constexpr int U = acc_sets(R * V);
  static_assert(U * R * V <= 24, "accumulators fit the register file with the panel vectors");
  const uint16_t* __restrict kidx = p.kidx;
  const float* __restrict w = p.w;
  const float* __restrict x = p.x;
  const int32_t* __restrict koff = p.koff;
  const int32_t* __restrict eoff = p.eoff;
  const __m512 va = _mm512_set1_ps(p.alpha), vb = _mm512_set1_ps(p.beta);
  const bool full_nt = p.nt == NT;
  static const float kZeros[1] = {0.f};
  const float* bias = p.bias ? p.bias : kZeros;  // bias[row * bias_step]
  const int64_t bias_step = p.bias ? 1 : 0;
  // Lanes of vector v that a partial tile stores.
  __mmask16 lanes[V];
  unroll<V>([&](auto v) SLIVER_ALWAYS {
    const int64_t n = p.nt - 16 * v;
    lanes[v] = n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
  });

  for (int64_t b = 0; b < p.nblocks; ++b) {
    const int64_t row0 = b * R;
    __m512 acc[U][R][V];
    unroll<U>([&](auto u) SLIVER_ALWAYS {
      unroll<R>([&](auto r) SLIVER_ALWAYS {
        unroll<V>([&](auto v) SLIVER_ALWAYS {
          acc[u][r][v] = (u == 0 && kAccIn) ? _mm512_loadu_ps(p.acc_in + (row0 + r) * NT + 16 * v)
                                            : _mm512_setzero_ps();
        });
      });
    });
    // One entry: V panel loads, R broadcasts, R * V FMAs into accumulator set u; xr is its row.
    auto fma_row = [&](auto u, int64_t e, const float* xr) SLIVER_ALWAYS {
      __m512 xv[V];
      unroll<V>([&](auto v) SLIVER_ALWAYS {
        xv[v] = _mm512_loadu_ps(xr + 16 * v);  // aligned in a panel: as fast
      });
      unroll<R>([&](auto r) SLIVER_ALWAYS {
        const __m512 wv = _mm512_set1_ps(w[e * R + r]);
        unroll<V>([&](auto v) SLIVER_ALWAYS {
          acc[u][r][v] = _mm512_fmadd_ps(wv, xv[v], acc[u][r][v]);
        });
      });
    };
    auto row_of = [&](int64_t e) SLIVER_ALWAYS {
      if constexpr (kRows == Rows::eoff) return x + eoff[e];
      if constexpr (kRows == Rows::koff) return x + koff[kidx[e]];
      return x + static_cast<int64_t>(kidx[e]) * NT;
    };
    int64_t e = p.ptr[b];
    const int64_t e1 = p.ptr[b + 1];
    if constexpr (kRows != Rows::eoff) {
      // Four 16-bit k in one 64-bit load: one load less per entry in a load-bound loop.
      constexpr int S = U <= 4 ? 4 : 8;
      for (; e + S <= e1; e += S) {
        unroll<S / 4>([&](auto g) SLIVER_ALWAYS {
          uint64_t ks;
          std::memcpy(&ks, kidx + e + 4 * g, sizeof(ks));
          unroll<4>([&](auto j) SLIVER_ALWAYS {
            constexpr int u = (4 * g + j) % U;
            const int64_t k = static_cast<int64_t>((ks >> (16 * j)) & 0xffff);
            fma_row(std::integral_constant<int, u>{}, e + 4 * g + j,
                    kOff ? x + koff[k] : x + k * NT);
          });
        });
      }
    }
    for (; e + U <= e1; e += U)
      unroll<U>([&](auto u) SLIVER_ALWAYS { fma_row(u, e + u, row_of(e + u)); });
    for (; e < e1; ++e) fma_row(std::integral_constant<int, 0>{}, e, row_of(e));
    unroll<U - 1>([&](auto u1) SLIVER_ALWAYS {
      unroll<R>([&](auto r) SLIVER_ALWAYS {
        unroll<V>([&](auto v) SLIVER_ALWAYS {
          acc[0][r][v] = _mm512_add_ps(acc[0][r][v], acc[u1 + 1][r][v]);
        });
      });
    });
    const bool full_rows = row0 + R <= p.rows;
    unroll<R>([&](auto r) SLIVER_ALWAYS {
      if (!full_rows && row0 + r >= p.rows) return;
      float* yr = p.y + (row0 + r) * p.ldy;
      const __m512 bv = kFinal ? _mm512_set1_ps(bias[(row0 + r) * bias_step])
                               : _mm512_setzero_ps();
      unroll<V>([&](auto v) SLIVER_ALWAYS {
        const __m512 t = kFinal ? act_vec<kAct>(_mm512_add_ps(acc[0][r][v], bv), va, vb)
                                : acc[0][r][v];
        if (full_nt) _mm512_storeu_ps(yr + 16 * v, t);
        else _mm512_mask_storeu_ps(yr + 16 * v, lanes[v], t);
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

template <int NT, int R>
void run(const F32SpmmArgs& p) {
  assert(p.nt >= 1 && p.nt <= NT && p.rows <= p.nblocks * R);
  assert(!p.eoff || p.koff);
  assert(p.act == Act::none || p.act == Act::relu || p.act == Act::clip ||
         p.act == Act::leaky_relu);
  if (p.eoff) spmm_rows<NT, R, Rows::eoff>(p);
  else if (p.koff) spmm_rows<NT, R, Rows::koff>(p);
  else spmm_rows<NT, R, Rows::panel>(p);
}

}  // namespace

#define SLIVER_SPMM_DEFINE_avx512(name, nt, r) \
  void name(const F32SpmmArgs& p) { run<nt, r>(p); }
#define SLIVER_SPMM_DEFINE_avx2(name, nt, r)
#define SLIVER_SPMM_DEFINE_scalar(name, nt, r)
#define SLIVER_F32_SPMM_KERNEL(name, nt, r, isa) SLIVER_SPMM_DEFINE_##isa(name, nt, r)
#include "f32_spmm.inc"
#undef SLIVER_F32_SPMM_KERNEL

}  // namespace sliver
