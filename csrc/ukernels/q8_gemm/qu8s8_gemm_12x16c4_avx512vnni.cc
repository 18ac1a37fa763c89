// qu8s8_gemm_12x16c4_avx512vnni: offset-u8 A x s8 B with vpdpbusd, exact on every B panel.
//
// Tile: up to 12 rows x 16 columns, one zmm accumulator per row. A k group of a B panel (16
// columns x 4 k = 64 bytes) is exactly one zmm, so the panels packed for the AVX2 kernels serve
// as they are; each row broadcasts its 4 bytes and one vpdpbusd adds 64 products. vpdpbusd has a
// latency of ~5 cycles at up to 2 per cycle (measured here: 325 GMAC/s per core on an Emerald
// Rapids Xeon, 1.7x the ymm form), so a tile needs ~10 independent accumulators: 12 rows give
// that, read from three consecutive 4-row A panels (the driver's packing is unchanged).
//
// The finished accumulators go through the AVX2 epilogue 4 rows at a time (its halves are the
// ymm accumulators it expects), so rounding and output conversion are the same code as the AVX2
// kernels'. The linker keeps the AVX2 translation unit's copy of that shared template (they
// come first in the link, see CMakeLists.txt), which this AVX-512 code calls like any other.
#include <immintrin.h>

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

// Rows [r0, r0 + R) of the tile: pair fixes, then the AVX2 epilogue.
template <int R>
inline void finish_rows(const Q8TileArgs& t, int r0, const __m512i* acc) {
  Q8TileArgs s = t;
  s.mr = R;
  s.a = t.a + (r0 / kPanelRows) * t.a_panel_stride;
  s.row_term = t.row_term + r0;
  s.row_sum = t.row_sum + r0;
  s.c = static_cast<uint8_t*>(t.c) + r0 * t.ldc * c_elem_bytes(t);
  __m512i v[4];
  for (int i = 0; i < R; ++i) v[i] = acc[r0 + i];
  for (int i = R; i < 4; ++i) v[i] = _mm512_setzero_si512();
  if (t.nfixes) {
    alignas(64) uint32_t add[q8fix::kMR][q8fix::kNR] = {};
    q8fix::sum_pair_fixes<false>(s, add);
    for (int i = 0; i < R; ++i)
      v[i] = _mm512_add_epi32(v[i], _mm512_load_si512(reinterpret_cast<const void*>(add[i])));
  }
  q8avx2::finish_tile<R>(s, lo_half(v[0]), hi_half(v[0]), lo_half(v[1]), hi_half(v[1]),
                         lo_half(v[2]), hi_half(v[2]), lo_half(v[3]), hi_half(v[3]));
}

// Row i's product for one k group: its 4 bytes broadcast against the group's 16 columns.
#define SLIVER_VNNI_ROW(i)                                                                   \
  if constexpr (MR > i) {                                                                    \
    const int32_t word =                                                                     \
        *reinterpret_cast<const int32_t*>(a[i / kPanelRows] + kKR * (i % kPanelRows));       \
    c##i = _mm512_dpbusd_epi32(c##i, _mm512_set1_epi32(word), vb);                           \
  }

template <int MR>
void gemm_12x16c4(const Q8TileArgs& t) {
  const uint8_t* a[3] = {t.a, t.a + t.a_panel_stride, t.a + 2 * t.a_panel_stride};
  const int8_t* b = t.b;
  // Named accumulators, not an array: GCC then keeps each in one register (with an array it
  // rotated them through copies every iteration).
  __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
  __m512i c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
  for (int64_t g = 0; g < t.kgroups; ++g) {
    const __m512i vb = _mm512_loadu_si512(b);
    SLIVER_VNNI_ROW(0)
    SLIVER_VNNI_ROW(1)
    SLIVER_VNNI_ROW(2)
    SLIVER_VNNI_ROW(3)
    SLIVER_VNNI_ROW(4)
    SLIVER_VNNI_ROW(5)
    SLIVER_VNNI_ROW(6)
    SLIVER_VNNI_ROW(7)
    SLIVER_VNNI_ROW(8)
    SLIVER_VNNI_ROW(9)
    SLIVER_VNNI_ROW(10)
    SLIVER_VNNI_ROW(11)
    for (int p = 0; p < 3; ++p) a[p] += kPanelRows * kKR;
    b += kNR * kKR;
  }
  const __m512i acc[kMaxMR] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11};
  constexpr int kFull = MR / kPanelRows, kRest = MR % kPanelRows;
  if constexpr (kFull > 0) finish_rows<4>(t, 0, acc);
  if constexpr (kFull > 1) finish_rows<4>(t, 4, acc);
  if constexpr (kFull > 2) finish_rows<4>(t, 8, acc);
  if constexpr (kRest > 0) finish_rows<kRest>(t, kFull * kPanelRows, acc);
}

#undef SLIVER_VNNI_ROW

template <int... MRs>
void dispatch(const Q8TileArgs& t, std::integer_sequence<int, MRs...>) {
  using Fn = void (*)(const Q8TileArgs&);
  static constexpr Fn kByRows[] = {gemm_12x16c4<MRs + 1>...};
  kByRows[t.mr - 1](t);
}

}  // namespace

void qu8s8_gemm_12x16c4_avx512vnni(const Q8TileArgs& t) {
  assert(t.mr >= 1 && t.mr <= kMaxMR && t.nc >= 1 && t.nc <= kNR && t.kgroups >= 0);
  dispatch(t, std::make_integer_sequence<int, kMaxMR>{});
}

}  // namespace sliver
