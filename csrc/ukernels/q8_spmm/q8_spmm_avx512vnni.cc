// q8_spmm_<NT>x1{c4,q4}_avx512vnni: the INT8 sparse-weight kernels of unblocked rows with
// vpdpbusd, which adds four u8 x s8 products straight into an int32 lane: exact for any bytes
// (no saturating 16-bit step), one instruction where AVX2 needs vpmaddubsw + vpmaddwd + vpaddd.
//
// c4 (kr = 8, aligned quads): a stored entry is four consecutive inputs k..k+3 (k % 4 == 0) and
// the panel holds them as the four bytes of each lane's 32-bit word (sparse.h), the layout of
// the dense kernel's B panels: an entry costs one step byte, one weight broadcast and one
// vpdpbusd per 16 lanes, with nothing to interleave. Unstructured weights pay for the zeros that
// share a group with a nonzero (at 10% nonzeros a group holds 1.16 of them on average), 1x4
// pruning pays nothing.
// q4 (kr = 4, any four nonzeros): AVX2's quads and uint8 panel (q8_spmm_quad_avx2.h), the
// three multiply-add instructions per 8 lanes replaced by one; the unpacks stay.
//
// vpdpbusd has a latency of ~5 cycles at up to 2 a cycle, so each row keeps several
// independent accumulator sets (entries take turns) and adds them at the end: int32 additions
// wrap, so the order does not change the sums.
#include <immintrin.h>

#include <cassert>
#include <cstdint>
#include <cstring>
#include <utility>

#include "sliver/sparse.h"
#include "ukernels/unroll.h"

namespace sliver {
namespace {

// 16 int32 lanes in a zmm, or 8 in a ymm (8-lane tiles).
template <int L>
struct Vec;
template <>
struct Vec<16> {
  using T = __m512i;
  static T zero() { return _mm512_setzero_si512(); }
  static T load(const void* p) { return _mm512_load_si512(p); }
  static T bcast(int32_t v) { return _mm512_set1_epi32(v); }
  static T dp(T acc, T u, T w) { return _mm512_dpbusd_epi32(acc, u, w); }
  static T add(T a, T b) { return _mm512_add_epi32(a, b); }
  static T loadu(const int32_t* p) { return _mm512_loadu_si512(p); }
  static void store(int32_t* y, T v, int64_t n) {
    _mm512_mask_storeu_epi32(y, static_cast<__mmask16>((1u << n) - 1), v);
  }
};
template <>
struct Vec<8> {
  using T = __m256i;
  static T zero() { return _mm256_setzero_si256(); }
  static T load(const void* p) { return _mm256_load_si256(static_cast<const __m256i*>(p)); }
  static T bcast(int32_t v) { return _mm256_set1_epi32(v); }
  static T dp(T acc, T u, T w) { return _mm256_dpbusd_epi32(acc, u, w); }
  static T add(T a, T b) { return _mm256_add_epi32(a, b); }
  static T loadu(const int32_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  }
  static void store(int32_t* y, T v, int64_t n) {
    _mm256_mask_storeu_epi32(y, static_cast<__mmask8>((1u << n) - 1), v);
  }
};

SLIVER_INLINE int32_t weight_quad(const int8_t* w, int64_t e) {
  int32_t v;
  std::memcpy(&v, w + 2 * e, sizeof(v));
  return v;
}

// U accumulator sets of A vectors (L lanes each) for one row: the sum of the sets, plus acc_in,
// into lanes [0, nt) of the row.
template <int L, int U, int A>
SLIVER_INLINE void store_row(typename Vec<L>::T (&acc)[U][A], const Q8SpmmArgs& p, int64_t b,
                             int NT) {
  using V = Vec<L>;
  unroll<A>([&](auto a) {
    typename V::T s = acc[0][a];
    unroll<U - 1>([&](auto u) { s = V::add(s, acc[u + 1][a]); });
    if (p.acc_in) s = V::add(s, V::loadu(p.acc_in + b * NT + L * a));
    const int64_t n = p.nt - L * a;
    if (n > 0) V::store(p.y + b * p.ldy + L * a, s, n < L ? n : L);
  });
}

// c4: NT lanes in A vectors of L lanes; U sets against vpdpbusd's latency.
template <int NT>
void group_tile(const Q8SpmmArgs& p) {
  constexpr int L = NT >= 16 ? 16 : 8, A = NT / L, U = NT == 32 ? 4 : 6;
  using V = Vec<L>;
  constexpr int64_t kGroupBytes = 4 * NT;
  const int8_t* __restrict w = static_cast<const int8_t*>(p.w);
  const uint8_t* __restrict steps = p.kidx + p.first / 2;
  const uint8_t* x = reinterpret_cast<const uint8_t*>(p.x);
  int64_t e = p.first;
  for (int64_t b = 0; b < p.nblocks; ++b) {
    typename V::T acc[U][A];
    unroll<U>([&](auto u) { unroll<A>([&](auto a) { acc[u][a] = V::zero(); }); });
    const int64_t e1 = e + p.count[b];
    const uint8_t* base = x;
    auto entry = [&](auto u) SLIVER_ALWAYS {
      base += static_cast<int64_t>(*steps++) * kGroupBytes;
      const typename V::T wq = V::bcast(weight_quad(w, e));
      unroll<A>([&](auto a) { acc[u][a] = V::dp(acc[u][a], V::load(base + 4 * L * a), wq); });
      e += 2;
    };
    while (e + 2 * U <= e1) unroll<U>(entry);
    while (e < e1) entry(std::integral_constant<int, 0>{});
    if (b < p.rows) store_row<L, U, A>(acc, p, b, NT);
  }
}

// q4: the quad's four panel rows, from four byte steps (sparse.h's pair semantics).
template <int NT>
SLIVER_INLINE void quad_rows(const uint8_t* kidx, int64_t e, const uint8_t*& base,
                             const uint8_t* r[4]) {
  uint32_t s;
  std::memcpy(&s, kidx + 2 * e, sizeof(s));
  r[0] = base + static_cast<int64_t>(s & 0xff) * NT;
  r[1] = base + static_cast<int64_t>((s >> 8) & 0xff) * NT;
  r[2] = r[1] + static_cast<int64_t>((s >> 16) & 0xff) * NT;
  r[3] = r[1] + static_cast<int64_t>(s >> 24) * NT;
  base = r[3];
}

// The four rows interleaved into (u1, u2, u3, u4) words, 8 lanes a ymm in lane order (the
// panel's 32-lane order is what the in-lane unpacks need, see q8_spmm_quad_avx2.h).
template <int NT>
SLIVER_INLINE void quad_words(const uint8_t* const r[4], __m256i* v) {
  if constexpr (NT == 32) {
    __m256i x[4];
    for (int i = 0; i < 4; ++i) x[i] = _mm256_load_si256(reinterpret_cast<const __m256i*>(r[i]));
    const __m256i a = _mm256_unpacklo_epi8(x[0], x[1]), b = _mm256_unpackhi_epi8(x[0], x[1]);
    const __m256i c = _mm256_unpacklo_epi8(x[2], x[3]), d = _mm256_unpackhi_epi8(x[2], x[3]);
    v[0] = _mm256_unpacklo_epi16(a, c);
    v[1] = _mm256_unpackhi_epi16(a, c);
    v[2] = _mm256_unpacklo_epi16(b, d);
    v[3] = _mm256_unpackhi_epi16(b, d);
  } else if constexpr (NT == 16) {
    __m128i x[4];
    for (int i = 0; i < 4; ++i) x[i] = _mm_load_si128(reinterpret_cast<const __m128i*>(r[i]));
    const __m128i a = _mm_unpacklo_epi8(x[0], x[1]), b = _mm_unpackhi_epi8(x[0], x[1]);
    const __m128i c = _mm_unpacklo_epi8(x[2], x[3]), d = _mm_unpackhi_epi8(x[2], x[3]);
    v[0] = _mm256_set_m128i(_mm_unpackhi_epi16(a, c), _mm_unpacklo_epi16(a, c));
    v[1] = _mm256_set_m128i(_mm_unpackhi_epi16(b, d), _mm_unpacklo_epi16(b, d));
  } else {
    static_assert(NT == 8, "quad tiles are 32, 16 or 8 lanes");
    __m128i x[4];
    for (int i = 0; i < 4; ++i) x[i] = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r[i]));
    const __m128i a = _mm_unpacklo_epi8(x[0], x[1]), c = _mm_unpacklo_epi8(x[2], x[3]);
    v[0] = _mm256_set_m128i(_mm_unpackhi_epi16(a, c), _mm_unpacklo_epi16(a, c));
  }
}

template <int NT>
void quad_tile(const Q8SpmmArgs& p) {
  constexpr int A = NT / 8, U = NT == 32 ? 2 : NT == 16 ? 3 : 4;
  using V = Vec<8>;
  const uint8_t* __restrict kidx = p.kidx;
  const int8_t* __restrict w = static_cast<const int8_t*>(p.w);
  const uint8_t* x = reinterpret_cast<const uint8_t*>(p.x);
  int64_t e = p.first;
  for (int64_t b = 0; b < p.nblocks; ++b) {
    __m256i acc[U][A];
    unroll<U>([&](auto u) { unroll<A>([&](auto a) { acc[u][a] = V::zero(); }); });
    const int64_t e1 = e + p.count[b];
    const uint8_t* base = x;
    auto quad = [&](auto u) SLIVER_ALWAYS {
      const uint8_t* r[4];
      quad_rows<NT>(kidx, e, base, r);
      __m256i v[A];
      quad_words<NT>(r, v);
      const __m256i wq = V::bcast(weight_quad(w, e));
      unroll<A>([&](auto a) { acc[u][a] = V::dp(acc[u][a], v[a], wq); });
      e += 2;
    };
    while (e + 2 * U <= e1) unroll<U>(quad);
    while (e < e1) quad(std::integral_constant<int, 0>{});
    if (b < p.rows) store_row<8, U, A>(acc, p, b, NT);
  }
}

template <int NT, int R, int KR>
void run(const Q8SpmmArgs& p) {
  static_assert(R == 1 && (KR == 4 || KR == kQ8AlignedQuads), "quads of unblocked rows");
  assert(p.nt >= 1 && p.nt <= NT && p.rows <= p.nblocks && !p.wide && p.first % 2 == 0);
  if constexpr (KR == 4) quad_tile<NT>(p);
  else group_tile<NT>(p);
}

}  // namespace

#define SLIVER_SPMM_DEFINE_avx512vnni(name, nt, r, kr) \
  void name(const Q8SpmmArgs& p) { run<nt, r, kr>(p); }
#define SLIVER_SPMM_DEFINE_avx2(name, nt, r, kr)
#define SLIVER_SPMM_DEFINE_scalar(name, nt, r, kr)
#define SLIVER_Q8_SPMM_KERNEL(name, nt, r, kr, isa) SLIVER_SPMM_DEFINE_##isa(name, nt, r, kr)
#include "q8_spmm.inc"
#undef SLIVER_Q8_SPMM_KERNEL

}  // namespace sliver
