// qu8s8_gemm_12x16c4_avx512vnni: offset-u8 A x s8 B with vpdpbusd, exact on every B panel.
//
// Tile: up to 12 rows x 16 columns, one zmm accumulator per row. A k group of a B panel (16
// columns x 4 k = 64 bytes) is exactly one zmm, so the panels packed for the AVX2 kernels serve
// as they are; each row broadcasts its 4 bytes and one vpdpbusd adds 64 products. vpdpbusd has a
// latency of ~5 cycles at up to 2 per cycle (measured here: 325 GMAC/s per core on an Emerald
// Rapids Xeon, 1.7x the ymm form), so a tile needs ~10 independent accumulators: 12 rows give
// that, read from three consecutive 4-row A panels (the driver's packing is unchanged).
//
// The finished accumulators are corrected and converted in zmm (finish_zmm) for the raw, int32,
// float and short_f32-requantized outputs, and go through the AVX2 epilogue 4 rows at a time for
// the rest (its halves are the ymm accumulators it expects). The linker keeps the AVX2
// translation unit's copy of that shared template (those objects come first in the link, see
// CMakeLists.txt), which this AVX-512 code calls like any other.
#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <utility>

#include "q8_epilogue_avx2.h"
#include "q8_pair_fixes.h"
#include "sliver/qgemm.h"

namespace sliver {
namespace {

constexpr int kPanelRows = 4, kNR = 16, kKR = 4, kMaxMR = 12;

inline __m256i lo_half(__m512i v) { return _mm512_castsi512_si256(v); }
inline __m256i hi_half(__m512i v) { return _mm512_extracti64x4_epi64(v, 1); }

size_t c_elem_bytes(const Q8TileArgs& t) {
  return t.ep && t.ep->output == QGemmOutput::quantized ? 1 : 4;
}

// Where A comes from (Q8TileArgs): offset-u8 panels; raw u8 rows in place; raw s8 rows in
// place, which take the unsigned side of vpdpbusd from the weights instead (w + 128 = w ^ 0x80,
// one xor per k group) and leave the sum 128 * rowsum to the driver's row terms; u8 rows as
// runs read in place through a table of pointers (a conv's window taps in the image).
enum AMode { kPanels, kRowsU8, kRowsS8, kIndirect };

// Adds the pair fixes (qgemm.h) of rows [0, MR) of raw rows: a * r, a being the operand the
// panel form would hold for u8 rows (u = a) and the signed code for s8 ones (see kRowsS8).
template <int MR, AMode kMode>
inline void add_fixes_rows(const Q8TileArgs& t, __m512i* acc) {
  alignas(64) uint32_t add[kMaxMR][kNR] = {};
  for (int64_t f = 0; f < t.nfixes; ++f) {
    const Q8PairFix& fx = t.fixes[f];
    for (int i = 0; i < MR; ++i) {
      const uint8_t code = t.a[i * t.a_row_stride + fx.k];
      const int32_t v = kMode == kRowsS8 ? static_cast<int8_t>(code) : code;
      add[i][fx.col] += static_cast<uint32_t>(v * int32_t{fx.r});
    }
  }
  for (int i = 0; i < MR; ++i)
    acc[i] = _mm512_add_epi32(acc[i], _mm512_load_si512(reinterpret_cast<const void*>(add[i])));
}

// Adds the pair fixes (qgemm.h) of rows [0, MR), 4-row panel by panel.
template <int MR>
inline void add_fixes(const Q8TileArgs& t, __m512i* acc) {
  for (int r0 = 0; r0 < MR; r0 += kPanelRows) {
    Q8TileArgs s = t;
    s.mr = std::min(kPanelRows, MR - r0);
    s.a = t.a + (r0 / kPanelRows) * t.a_panel_stride;
    alignas(64) uint32_t add[q8fix::kMR][q8fix::kNR] = {};
    q8fix::sum_pair_fixes<false>(s, add);
    for (int i = 0; i < s.mr; ++i)
      acc[r0 + i] =
          _mm512_add_epi32(acc[r0 + i], _mm512_load_si512(reinterpret_cast<const void*>(add[i])));
  }
}

// Rows [r0, r0 + R) through the AVX2 epilogue (the float64 and onnxruntime-order requantizations,
// which the zmm epilogue below does not repeat).
template <int R>
inline void finish_rows_avx2(const Q8TileArgs& t, int r0, const __m512i* acc) {
  Q8TileArgs s = t;
  s.mr = R;
  s.row_term = t.row_term + r0;
  s.row_sum = t.row_sum + r0;
  s.c = static_cast<uint8_t*>(t.c) + r0 * t.ldc * c_elem_bytes(t);
  __m512i v[4];
  for (int i = 0; i < R; ++i) v[i] = acc[r0 + i];
  for (int i = R; i < 4; ++i) v[i] = _mm512_setzero_si512();
  q8avx2::finish_tile<R>(s, lo_half(v[0]), hi_half(v[0]), lo_half(v[1]), hi_half(v[1]),
                         lo_half(v[2]), hi_half(v[2]), lo_half(v[3]), hi_half(v[3]));
}

template <int MR>
inline void finish_avx2(const Q8TileArgs& t, const __m512i* acc) {
  constexpr int kFull = MR / kPanelRows, kRest = MR % kPanelRows;
  if constexpr (kFull > 0) finish_rows_avx2<4>(t, 0, acc);
  if constexpr (kFull > 1) finish_rows_avx2<4>(t, 4, acc);
  if constexpr (kFull > 2) finish_rows_avx2<4>(t, 8, acc);
  if constexpr (kRest > 0) finish_rows_avx2<kRest>(t, kFull * kPanelRows, acc);
}

// The zmm epilogue: a whole 16-column row per vector, masked stores, the constants loaded once
// per tile (the AVX2 epilogue, called per 4 rows, cost as much as the products for K <= 128).
// Same operations and order as q8_epilogue_avx2.h, so the same bits.
enum class ZKind { raw, int32, float32, short_f32 };

template <class V>
inline V opaque(V v) {  // no FMA contraction of a product the reference rounds on its own
  __asm__("" : "+v"(v));
  return v;
}

template <ZKind kKind, int MR>
void finish_zmm(const Q8TileArgs& t, const __m512i* acc) {
  const __mmask16 m = static_cast<__mmask16>((1u << t.nc) - 1);
  if constexpr (kKind == ZKind::raw) {
    for (int i = 0; i < MR; ++i)
      _mm512_mask_storeu_epi32(static_cast<int32_t*>(t.c) + i * t.ldc, m, acc[i]);
    return;
  } else {
    const Q8EpilogueParams& p = *t.ep;
    // column arrays are padded to whole panels: full-vector loads are in bounds
    const __m512i col = _mm512_loadu_si512(p.col_term + t.n0);
    const __m512i beta = p.col_beta ? _mm512_loadu_si512(p.col_beta + t.n0) : __m512i{};
    __m512 scale = _mm512_setzero_ps(), bias = _mm512_setzero_ps();
    if constexpr (kKind != ZKind::int32) scale = _mm512_loadu_ps(p.col_scale + t.n0);
    if (kKind == ZKind::float32 && p.float_bias)  // not padded
      bias = _mm512_maskz_loadu_ps(m, p.float_bias + t.n0);
    const __m512 zp_magic = _mm512_set1_ps(static_cast<float>(p.y_zero_point) +
                                           q8avx2::EpilogueConsts::kMagic);
    const __m512i magic_bits = _mm512_set1_epi32(0x4B400000);
    const __m512i lo = _mm512_set1_epi32(p.qmin), hi = _mm512_set1_epi32(p.qmax);
    // locals: through t, every store would reload them (a u8 store may alias anything)
    void* const c = t.c;
    const int64_t ldc = t.ldc;
    const int32_t* const row_term = t.row_term;
    for (int i = 0; i < MR; ++i) {
      __m512i v = _mm512_add_epi32(_mm512_add_epi32(acc[i], _mm512_set1_epi32(row_term[i])), col);
      if (p.col_beta)
        v = _mm512_add_epi32(v, _mm512_mullo_epi32(_mm512_set1_epi32(t.row_sum[i]), beta));
      if constexpr (kKind == ZKind::int32) {
        _mm512_mask_storeu_epi32(static_cast<int32_t*>(c) + i * ldc, m, v);
      } else if constexpr (kKind == ZKind::float32) {
        __m512 y = opaque(_mm512_mul_ps(_mm512_cvtepi32_ps(v), scale));
        if (p.float_bias) y = _mm512_add_ps(y, bias);
        _mm512_mask_storeu_ps(static_cast<float*>(c) + i * ldc, m, y);
      } else {  // requant.h's short_f32 form, as q8avx2::requant_short_f32
        const __m512 f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), scale, zp_magic);
        __m512i q = _mm512_sub_epi32(_mm512_castps_si512(f), magic_bits);
        q = _mm512_min_epi32(_mm512_max_epi32(q, lo), hi);
        // q lies inside the output type: the truncating narrow is the code, u8 or s8
        _mm512_mask_cvtepi32_storeu_epi8(static_cast<uint8_t*>(c) + i * ldc, m, q);
      }
    }
  }
}

template <int MR, AMode kMode>
inline void finish(const Q8TileArgs& t, __m512i* acc) {
  if (t.nfixes) {
    if constexpr (kMode == kPanels)
      add_fixes<MR>(t, acc);
    else if constexpr (kMode != kIndirect)  // the driver keeps panels with fixes off that mode
      add_fixes_rows<MR, kMode>(t, acc);
  }
  if (!t.ep) return finish_zmm<ZKind::raw, MR>(t, acc);
  switch (t.ep->output) {
    case QGemmOutput::int32:
      return finish_zmm<ZKind::int32, MR>(t, acc);
    case QGemmOutput::float32:
      return finish_zmm<ZKind::float32, MR>(t, acc);
    case QGemmOutput::quantized:
      if (q8avx2::requant_kind(*t.ep) == q8avx2::kRequantShortF32)
        return finish_zmm<ZKind::short_f32, MR>(t, acc);
      return finish_avx2<MR>(t, acc);
  }
}

// Row i's product for k group u of an unrolled step: its 4 bytes broadcast against the group's
// 16 columns of one B panel (kTwo: and of the next panel too, into d##i).
#define SLIVER_VNNI_ROW(i, u)                                                                  \
  if constexpr (MR > i) {                                                                      \
    const __m512i va = _mm512_set1_epi32(*reinterpret_cast<const int32_t*>(                    \
        (kMode == kPanels     ? a[i / kPanelRows] + kKR * (i % kPanelRows)                     \
         : kMode == kIndirect ? ar[i] + off                                                    \
                              : a[0] + i * stride) +                                           \
        u * kAStep));                                                                          \
    c##i = kMode == kRowsS8 ? _mm512_dpbusd_epi32(c##i, vb, va)                                \
                            : _mm512_dpbusd_epi32(c##i, va, vb);                               \
    if constexpr (kTwo)                                                                        \
      d##i = kMode == kRowsS8 ? _mm512_dpbusd_epi32(d##i, vb2, va)                             \
                              : _mm512_dpbusd_epi32(d##i, va, vb2);                            \
  }

// K group u of a step: the B vectors, then every row.
#define SLIVER_VNNI_GROUP(u)                                                 \
  {                                                                          \
    __m512i vb = _mm512_loadu_si512(b + u * kNR * kKR), vb2 = vb;            \
    if constexpr (kTwo) vb2 = _mm512_loadu_si512(b + b2_off + u * kNR * kKR); \
    if constexpr (kMode == kRowsS8) {                                        \
      vb = _mm512_xor_si512(vb, flip);                                       \
      if constexpr (kTwo) vb2 = _mm512_xor_si512(vb2, flip);                 \
    }                                                                        \
    SLIVER_VNNI_ROW(0, u)                                                    \
    SLIVER_VNNI_ROW(1, u)                                                    \
    SLIVER_VNNI_ROW(2, u)                                                    \
    SLIVER_VNNI_ROW(3, u)                                                    \
    SLIVER_VNNI_ROW(4, u)                                                    \
    SLIVER_VNNI_ROW(5, u)                                                    \
    SLIVER_VNNI_ROW(6, u)                                                    \
    SLIVER_VNNI_ROW(7, u)                                                    \
    SLIVER_VNNI_ROW(8, u)                                                    \
    SLIVER_VNNI_ROW(9, u)                                                    \
    SLIVER_VNNI_ROW(10, u)                                                   \
    SLIVER_VNNI_ROW(11, u)                                                   \
  }

template <int MR, AMode kMode, bool kTwo>
void gemm_12x16c4(const Q8TileArgs& t) {
  // panels: the three 4-row panels; rows: a[0] is row 0, row i at a[0] + i * stride
  const int64_t stride = t.a_row_stride;
  const uint8_t* a[3] = {t.a, t.a + t.a_panel_stride, t.a + 2 * t.a_panel_stride};
  constexpr int64_t kAStep = kMode == kPanels ? kPanelRows * kKR : kKR;
  const int8_t* b = t.b;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  // Named accumulators, not an array: GCC then keeps each in one register (with an array it
  // rotated them through copies every iteration).
  __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
  __m512i c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
  __m512i d0 = c0, d1 = c0, d2 = c0, d3 = c0, d4 = c0, d5 = c0;
  __m512i d6 = c0, d7 = c0, d8 = c0, d9 = c0, d10 = c0, d11 = c0;
  // Indirect: the k groups come as a_segments runs, each read through its MR row pointers at a
  // common offset; the other modes are one run of kgroups.
  constexpr bool kInd = kMode == kIndirect;
  const int64_t runs = kInd ? t.a_segments : 1;
  const int64_t run_groups = kInd ? t.a_segment_groups : t.kgroups;
  const int64_t b2_off = kTwo ? t.next->b - b : 0;
  const uint8_t* ar[kMaxMR] = {};
  // Two k groups per iteration: half the pointer updates and loop branches, which otherwise
  // take issue slots on the two ports that run vpdpbusd (3136x64x576: +3%; four measured no
  // better).
  constexpr int kUnroll = 2;
  for (int64_t s = 0; s < runs; ++s) {
    if constexpr (kInd)
      for (int i = 0; i < MR; ++i) ar[i] = t.a_ind[s * t.a_ind_stride + i];
    int64_t off = 0, g = 0;
    for (; g + kUnroll <= run_groups; g += kUnroll) {
      SLIVER_VNNI_GROUP(0)
      SLIVER_VNNI_GROUP(1)
      if constexpr (!kInd)
        for (int p = 0; p < 3; ++p) a[p] += kUnroll * kAStep;
      off += kUnroll * kKR;
      b += kUnroll * kNR * kKR;
    }
    if (g < run_groups) {  // odd
      SLIVER_VNNI_GROUP(0)
      if constexpr (!kInd)
        for (int p = 0; p < 3; ++p) a[p] += kAStep;
      b += kNR * kKR;
    }
  }
  __m512i acc[kMaxMR] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11};
  finish<MR, kMode>(t, acc);
  if constexpr (kTwo) {
    __m512i acc2[kMaxMR] = {d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11};
    finish<MR, kMode>(*t.next, acc2);
  }
}

#undef SLIVER_VNNI_GROUP
#undef SLIVER_VNNI_ROW

template <AMode kMode, int... MRs>
void dispatch(const Q8TileArgs& t, std::integer_sequence<int, MRs...>) {
  using Fn = void (*)(const Q8TileArgs&);
  static constexpr Fn kOne[] = {gemm_12x16c4<MRs + 1, kMode, false>...};
  static constexpr Fn kTwo[] = {gemm_12x16c4<MRs + 1, kMode, true>...};
  (t.next ? kTwo : kOne)[t.mr - 1](t);
}

}  // namespace

void qu8s8_gemm_12x16c4_avx512vnni(const Q8TileArgs& t) {
  assert(t.mr >= 1 && t.mr <= kMaxMR && t.nc >= 1 && t.nc <= kNR && t.kgroups >= 0);
  constexpr auto rows = std::make_integer_sequence<int, kMaxMR>{};
  if (t.a_ind) {
    assert(!t.a_signed && t.nfixes == 0 && (!t.next || t.next->nfixes == 0));
    return dispatch<kIndirect>(t, rows);
  }
  if (t.a_row_stride == 0) return dispatch<kPanels>(t, rows);
  assert(t.kgroups * kKR <= t.a_row_stride || t.mr == 1);
  return t.a_signed ? dispatch<kRowsS8>(t, rows) : dispatch<kRowsU8>(t, rows);
}

void q8_row_sums_avx512vnni(int64_t rows, int64_t K, const uint8_t* a, int64_t lda, bool a_signed,
                            int32_t* rowsum) {
  // vpdpbusd against ones: 64 codes per instruction, u8 on the unsigned side, s8 on the signed.
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t i = 0; i < rows; ++i) {
    const uint8_t* row = a + i * lda;
    __m512i acc = _mm512_setzero_si512();
    int64_t k = 0;
    for (; k + 64 <= K; k += 64) {
      const __m512i x = _mm512_loadu_si512(row + k);
      acc = a_signed ? _mm512_dpbusd_epi32(acc, ones, x) : _mm512_dpbusd_epi32(acc, x, ones);
    }
    if (k < K) {
      const __mmask64 tail = (uint64_t{1} << (K - k)) - 1;  // K - k < 64
      const __m512i x = _mm512_maskz_loadu_epi8(tail, row + k);
      acc = a_signed ? _mm512_dpbusd_epi32(acc, ones, x) : _mm512_dpbusd_epi32(acc, x, ones);
    }
    rowsum[i] = _mm512_reduce_add_epi32(acc);
  }
}

}  // namespace sliver
