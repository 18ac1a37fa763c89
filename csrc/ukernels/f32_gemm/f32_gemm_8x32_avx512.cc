// f32_gemm_8x32_avx512: 8 rows x 32 columns of C in 16 zmm accumulators.
//
// Why 8x32: each k step loads two B vectors and broadcasts eight A values for 16 FMAs, twice
// the chains that the 4-cycle latency of the two 512-bit FMA pipes needs, with loads well below
// the FMA rate. Measured against 12x32, 14x32, 12x16 and 14x16 (same code, Sapphire Rapids, one
// thread) it was as fast on square and BERT shapes and the fastest on conv shapes with few
// rows or short K (M = 64 output channels, K = 32: 104 GFLOPS, 12x32 95, 14x16 75); 8 also
// divides the usual channel counts. Two vectors per row (rather than 16 columns and more rows)
// halve the A broadcasts per FMA. The structure is the AVX2 kernel's (f32_gemm_6x16_avx2.cc):
// templates per row count, one vector per row when nr <= 16, K split over accumulator sets or
// panels side by side when a tile has few chains, and masked loads and stores at the edges.
#include <immintrin.h>

#include <cassert>
#include <cstdint>
#include <utility>

#include "sliver/gemm.h"
#include "ukernels/unroll.h"

namespace sliver {
namespace {

constexpr int kMR = 8;
constexpr int kNR = 32;
constexpr int kVecs = kNR / 16;
static_assert(kNR % 16 == 0, "whole zmm vectors per row");
static_assert(kNR * sizeof(float) % 64 == 0, "packed B rows keep the 64-byte alignment of a panel");
// Registers that may hold accumulators: the 32 zmm less the B vectors, an A broadcast and a spare.
constexpr int kAccRegs = 32 - kVecs - 2;
static_assert(kMR * kVecs <= kAccRegs, "a full tile's accumulators must fit in registers");

// Compile-time loop: f(integral_constant<int, 0>) ... f(integral_constant<int, N-1>). Loops over
// registers must be fully unrolled or the accumulators live in memory; this guarantees it at
// any optimisation level.

// ---- vector math for the epilogue (AVX-512), the AVX2 kernel's formulas and accuracy ----

// exp(x) for x in [-87.3, 88.3] (clamped): 2^n * p(r), r = x - n ln2 in [-ln2/2, ln2/2], p the
// degree-7 Taylor polynomial (truncation error < 1e-8 relative), ln2 split in two for exactness.
// scalef multiplies by 2^n exactly, as building the exponent bits would.
inline __m512 exp_ps(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(p, n);
}

inline __m512 sigmoid_ps(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.f);
  return _mm512_div_ps(one, _mm512_add_ps(one, exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

// tanh: odd Taylor series to x^11 below |x| = 0.3 (error < 1e-8 relative), where the formula
// 1 - 2 / (exp(2|x|) + 1) would cancel; that formula above.
inline __m512 tanh_ps(__m512 x) {
  const __m512 ax = _mm512_abs_ps(x);
  const __m512 one = _mm512_set1_ps(1.f);
  const __m512 big = _mm512_sub_ps(
      one, _mm512_div_ps(_mm512_set1_ps(2.f), _mm512_add_ps(exp_ps(_mm512_add_ps(ax, ax)), one)));
  const __m512 x2 = _mm512_mul_ps(x, x);
  __m512 p = _mm512_set1_ps(-1382.f / 155925);
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(62.f / 2835));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-17.f / 315));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(2.f / 15));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-1.f / 3));
  const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, x2), x, x);
  const __m512 large = _mm512_or_ps(big, _mm512_and_ps(_mm512_set1_ps(-0.f), x));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.3f), _CMP_LT_OQ), large,
                              small);
}

// 0.5 x (1 + erf(x / sqrt 2)) with erfc(z) ~ t P(t) exp(-z^2), t = 1 / (1 + p z) (Abramowitz &
// Stegun 7.1.26, |error| < 1.5e-7); for x < 0, 1 + erf = erfc(|z|) needs no cancellation.
inline __m512 gelu_erf_ps(__m512 x) {
  const __m512 z = _mm512_abs_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f)));
  const __m512 one = _mm512_set1_ps(1.f);
  const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), z, one));
  __m512 q = _mm512_set1_ps(1.061405429f);
  q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-1.453152027f));
  q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(1.421413741f));
  q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-0.284496736f));
  q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(0.254829592f));
  const __m512 erfc = _mm512_mul_ps(
      _mm512_mul_ps(q, t), exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(z, z))));
  // the sign bit picks, as blendv does in the AVX2 kernel (-0 and negative NaNs included)
  const __mmask16 neg = _mm512_movepi32_mask(_mm512_castps_si512(x));
  const __m512 one_plus_erf =
      _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(2.f), erfc), erfc);
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), one_plus_erf);
}

// 0.5 x (1 + tanh(u)) = x * sigmoid(2u): no cancellation for negative x.
inline __m512 gelu_tanh_ps(__m512 x) {
  const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
  const __m512 u = _mm512_mul_ps(_mm512_set1_ps(2.f * 0.79788456080286536f),
                                 _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), x3, x));
  return _mm512_mul_ps(x, sigmoid_ps(u));
}

template <int R, int V, class F>
SLIVER_INLINE void map_tile(__m512 (&t)[R][V], F f) {
  unroll<R>([&](auto i)
                SLIVER_ALWAYS { unroll<V>([&](auto v) SLIVER_ALWAYS { t[i][v] = f(t[i][v]); }); });
}

template <int R, int V>
void apply_act_tile(Act act, float alpha, float beta, __m512 (&t)[R][V]) {
  const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.f);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  auto hsig = [&](__m512 x) {
    return _mm512_min_ps(_mm512_max_ps(_mm512_fmadd_ps(va, x, vb), zero), one);
  };
  switch (act) {
    case Act::none:
      break;
    case Act::relu:
      map_tile(t, [&](__m512 x) { return _mm512_max_ps(x, zero); });
      break;
    case Act::clip:
      map_tile(t, [&](__m512 x) { return _mm512_min_ps(_mm512_max_ps(x, va), vb); });
      break;
    case Act::leaky_relu:
      map_tile(t, [&](__m512 x) {
        return _mm512_mask_mul_ps(x, _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), x, va);
      });
      break;
    case Act::sigmoid:
      map_tile(t, sigmoid_ps);
      break;
    case Act::hard_sigmoid:
      map_tile(t, hsig);
      break;
    case Act::hard_swish:
      map_tile(t, [&](__m512 x) { return _mm512_mul_ps(x, hsig(x)); });
      break;
    case Act::tanh:
      map_tile(t, tanh_ps);
      break;
    case Act::gelu_erf:
      map_tile(t, gelu_erf_ps);
      break;
    case Act::gelu_tanh:
      map_tile(t, gelu_tanh_ps);
      break;
  }
}

// ---- the tile kernel ----

// Hiding the 4-cycle FMA latency on 2 pipes takes >= 8 independent accumulator chains. Tiles of
// >= 3 rows split K over S accumulator sets when they have fewer; tiles of 1 or 2 rows instead
// work on P panels side by side, which also keeps P streams of B in flight (a single stream
// cannot saturate DRAM). The order of the additions in a tile thus depends only on its rows and
// on whether nr <= 16, never on how many panels a call covers: results do not depend on how the
// driver splits N.
constexpr int kMinChains = 8;
constexpr int panel_group(int rows) {
  return rows > 2 ? 1 : (kMinChains + rows * kVecs - 1) / (rows * kVecs);
}
constexpr int k_splits(int rows, int vecs) {
  if (rows <= 2) return 1;
  const int chains = rows * vecs;
  const int s = (kMinChains + chains - 1) / chains;
  return chains * s <= kAccRegs ? s : kAccRegs / chains;
}

// Finishes tile q of the call: C scaling, epilogue, store (masked past nr columns).
template <int R, int V>
void epilogue(const F32GemmUkernelArgs& p, int64_t q, int64_t nr, __m512 (&t)[R][V]) {
  float* c = p.c + q * kNR;
  const int64_t ldc = p.ldc;
  const Epilogue* ep = p.ep;
  __mmask16 mask[V];
  unroll<V>([&](auto v) SLIVER_ALWAYS {
    const int64_t n = nr - 16 * v;
    mask[v] = static_cast<__mmask16>(n >= 16 ? 0xffff : n <= 0 ? 0 : (1u << n) - 1);
  });
  auto load = [&](const float* src, int v)
                  SLIVER_ALWAYS { return _mm512_maskz_loadu_ps(mask[v], src + 16 * v); };
  auto each = [&](auto f) SLIVER_ALWAYS {
    unroll<R>([&](auto i) SLIVER_ALWAYS { unroll<V>([&](auto v) SLIVER_ALWAYS { f(i, v); }); });
  };

  if (p.c_scale != 0.f) {
    const __m512 cs = _mm512_set1_ps(p.c_scale);
    each([&](int i, int v)
             SLIVER_ALWAYS { t[i][v] = _mm512_fmadd_ps(cs, load(c + i * ldc, v), t[i][v]); });
  }
  if (ep) {
    if (p.bias && ep->bias_per_row) {
      each([&](int i, int v)
               SLIVER_ALWAYS { t[i][v] = _mm512_add_ps(t[i][v], _mm512_set1_ps(p.bias[i])); });
    } else if (p.bias) {
      __m512 bj[V];
      unroll<V>([&](auto v) SLIVER_ALWAYS { bj[v] = load(p.bias + q * kNR, v); });
      each([&](int i, int v) SLIVER_ALWAYS { t[i][v] = _mm512_add_ps(t[i][v], bj[v]); });
    }
    if (ep->act != Act::none) apply_act_tile(ep->act, ep->alpha, ep->beta, t);
    if (p.residual) {
      const float* res = p.residual + q * kNR;
      const int64_t ldr = ep->ld_residual;
      each([&](int i, int v)
               SLIVER_ALWAYS { t[i][v] = _mm512_add_ps(t[i][v], load(res + i * ldr, v)); });
    }
    if (ep->post_act != Act::none) apply_act_tile(ep->post_act, ep->post_alpha, ep->post_beta, t);
  }
  each([&](int i, int v)
           SLIVER_ALWAYS { _mm512_mask_storeu_ps(c + i * ldc + 16 * v, mask[v], t[i][v]); });
}

// Computes tiles q0 .. q0+P-1 of the call (R rows, 16V columns each, the last one with nr valid).
template <int R, int V, int P, bool kAPacked, bool kBPacked>
void tile_group(const F32GemmUkernelArgs& p, int64_t q0, int64_t nr) {
  constexpr int S = k_splits(R, V);
  static_assert(S * P * R * V <= kAccRegs, "accumulators must fit in registers");
  const int64_t kc = p.kc;
  const float* __restrict a = p.a;
  const float* __restrict b = p.b + q0 * p.b_panel_stride;
  const int64_t as = p.a_row_stride, bs = kBPacked ? kNR : p.b_k_stride, bps = p.b_panel_stride;
  float* c = p.c + q0 * kNR;
  const int64_t ldc = p.ldc;

  unroll<P>([&](auto q) SLIVER_ALWAYS {  // C is touched only at the end: fetch it meanwhile
    unroll<R>([&](auto i) SLIVER_ALWAYS {
      unroll<V>([&](auto v) SLIVER_ALWAYS {
        _mm_prefetch(reinterpret_cast<const char*>(c + q * kNR + i * ldc + 16 * v), _MM_HINT_T0);
      });
      _mm_prefetch(reinterpret_cast<const char*>(c + q * kNR + i * ldc + 16 * V - 1), _MM_HINT_T0);
    });
  });

  __m512 acc[S][P][R][V];
  auto each_acc = [&](auto f) SLIVER_ALWAYS {
    unroll<P>([&](auto q) SLIVER_ALWAYS {
      unroll<R>([&](auto i)
                    SLIVER_ALWAYS { unroll<V>([&](auto v) SLIVER_ALWAYS { f(q, i, v); }); });
    });
  };
  unroll<S>([&](auto s) SLIVER_ALWAYS {
    each_acc([&](auto q, auto i, auto v) SLIVER_ALWAYS { acc[s][q][i][v] = _mm512_setzero_ps(); });
  });

  // One rank-1 update per panel: V loads of B, R broadcasts of A, R*V FMAs into set s. B vectors
  // first for one panel, A broadcasts first for several panels (1-2 rows).
  auto step = [&](auto s, int64_t k) SLIVER_ALWAYS {
    if constexpr (P == 1) {
      __m512 bv[V];
      unroll<V>([&](auto v) SLIVER_ALWAYS {
        const float* src = b + k * bs + 16 * v;
        bv[v] = kBPacked ? _mm512_load_ps(src) : _mm512_loadu_ps(src);
      });
      unroll<R>([&](auto i) SLIVER_ALWAYS {
        const __m512 av = _mm512_set1_ps(kAPacked ? a[k * kMR + i] : a[i * as + k]);
        unroll<V>([&](auto v) SLIVER_ALWAYS {
          acc[s][0][i][v] = _mm512_fmadd_ps(av, bv[v], acc[s][0][i][v]);
        });
      });
    } else {
      __m512 av[R];
      unroll<R>([&](auto i) SLIVER_ALWAYS {
        av[i] = _mm512_set1_ps(kAPacked ? a[k * kMR + i] : a[i * as + k]);
      });
      unroll<P>([&](auto q) SLIVER_ALWAYS {
        unroll<V>([&](auto v) SLIVER_ALWAYS {
          const float* src = b + q * bps + k * bs + 16 * v;
          const __m512 bv = kBPacked ? _mm512_load_ps(src) : _mm512_loadu_ps(src);
          unroll<R>([&](auto i) SLIVER_ALWAYS {
            acc[s][q][i][v] = _mm512_fmadd_ps(av[i], bv, acc[s][q][i][v]);
          });
        });
      });
    }
  };
  int64_t k = 0;
  for (; k + S <= kc; k += S) unroll<S>([&](auto s) SLIVER_ALWAYS { step(s, k + s); });
  for (; k < kc; ++k) step(std::integral_constant<int, 0>{}, k);
  unroll<S - 1>([&](auto s1) SLIVER_ALWAYS {
    each_acc([&](auto q, auto i, auto v) SLIVER_ALWAYS {
      acc[0][q][i][v] = _mm512_add_ps(acc[0][q][i][v], acc[s1 + 1][q][i][v]);
    });
  });

  unroll<P>([&](auto q) SLIVER_ALWAYS {
    // The epilogue works on a copy: passing acc itself by reference to the (out-of-line)
    // activation code would make it addressable and keep the K loop storing it every iteration.
    __m512 t[R][V];
    unroll<R>([&](auto i) SLIVER_ALWAYS {
      unroll<V>([&](auto v) SLIVER_ALWAYS { t[i][v] = acc[0][q][i][v]; });
    });
    epilogue<R, V>(p, q0 + q, q + 1 == P ? nr : 16 * V, t);
  });
}

// All tiles of one call for R rows: full panels in groups of panel_group(R), then the partial
// last one (one vector per row when nr <= 16).
template <int R, bool kAPacked, bool kBPacked>
void row_of_tiles(const F32GemmUkernelArgs& p) {
  constexpr int G = panel_group(R);
  const int64_t full = p.panels - (p.nr < kNR ? 1 : 0);
  int64_t q = 0;
  for (; q + G <= full; q += G) tile_group<R, kVecs, G, kAPacked, kBPacked>(p, q, kNR);
  if constexpr (G > 1) {
    for (; q < full; ++q) tile_group<R, kVecs, 1, kAPacked, kBPacked>(p, q, kNR);
  }
  if (p.nr <= 16 && kVecs > 1)
    tile_group<R, 1, 1, kAPacked, kBPacked>(p, p.panels - 1, p.nr);
  else if (p.nr < kNR)
    tile_group<R, kVecs, 1, kAPacked, kBPacked>(p, p.panels - 1, p.nr);
}

using RowFn = void (*)(const F32GemmUkernelArgs&);

template <bool kAPacked, bool kBPacked, int... Rs>
RowFn row_fn(int64_t r, std::integer_sequence<int, Rs...>) {
  static constexpr RowFn fns[] = {row_of_tiles<Rs + 1, kAPacked, kBPacked>...};
  return fns[r - 1];
}

}  // namespace

void f32_gemm_8x32_avx512(const F32GemmUkernelArgs& p) {
  assert(p.mr >= 1 && p.mr <= kMR && p.nr >= 1 && p.nr <= kNR && p.kc >= 0 && p.panels >= 1);
  assert(p.a_row_stride == 0 || p.a_row_stride >= p.kc);
  assert(p.b_k_stride >= kNR || p.kc <= 1);  // NR floats per B row are read
  // Packed panels (stride NR, 64-byte aligned) get aligned loads.
  const bool b_packed = p.b_k_stride == kNR && (reinterpret_cast<uintptr_t>(p.b) & 63) == 0 &&
                        (p.panels == 1 || p.b_panel_stride % 16 == 0);
  using Rows = std::make_integer_sequence<int, kMR>;
  RowFn fn =
      p.a_row_stride == 0
          ? (b_packed ? row_fn<true, true>(p.mr, Rows{}) : row_fn<true, false>(p.mr, Rows{}))
          : (b_packed ? row_fn<false, true>(p.mr, Rows{}) : row_fn<false, false>(p.mr, Rows{}));
  fn(p);
}

}  // namespace sliver
