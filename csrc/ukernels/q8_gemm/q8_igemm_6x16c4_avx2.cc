// q8_igemm_6x16c4_avx2: 6 output pixels x 16 columns of an NHWC conv per call, int16 vpmaddwd
// products of raw codes (q8_igemm.h explains the scheme), requantized from the registers.
//
// Per 4-byte group and row: one broadcast of the row's 4 codes (int8: one XOR to offset them),
// three shifts to split them into the two int16 pairs, and 4 vpmaddwd (their weight operand
// straight from L1) + 4 vpaddd. 12 accumulators + 4 temporaries fill the 16 ymm registers, which
// GCC will not do from intrinsics (it keeps the weights in registers and spills accumulators),
// so the group step is a short inline-assembly block. Measured on Zen 3 (L1-resident, 9 taps
// x 16-64 channels): ~56 GMAC/s, 2x the same tile from intrinsics and ~15% above a 4x16 tile
// with the weights in registers or on an A panel packed to int16 pairs.
#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstring>

#include "q8_igemm.h"
#include "q8_requant_avx2.h"

namespace sliver {
namespace {

// One 4-byte group of all 6 rows against the group's 4 weight vectors at b, in assembly: with
// intrinsics GCC keeps the weights in registers and spills accumulators instead (2x slower).
// Per row: broadcast the 4 codes, (int8: XOR 0x80 from memory), hi = bytes 1, 3 as int16
// (shift right), lo = bytes 0, 2 (AND with a mask in memory: no register is free; an AND runs
// on any of Zen 3's four vector pipes, a shift on two of them), then
// 4 (2 with kHalf) vpmaddwd with the weights as memory operands, each added into its
// accumulator. ymm0-ymm3 are the temporaries; the 12 accumulators take the other 12.
#define SLIVER_IGEMM_ROW(R, C0, C1)                  \
  "vpbroadcastd (%[" R "],%[off]), %%ymm0\n\t"       \
  FLIP                                               \
  "vpsrlw $8, %%ymm0, %%ymm1\n\t"                    \
  "vpand %[mask], %%ymm0, %%ymm0\n\t"                \
  "vpmaddwd (%[b]), %%ymm0, %%ymm2\n\t"              \
  "vpmaddwd 32(%[b]), %%ymm1, %%ymm3\n\t"            \
  "vpaddd %%ymm2, %[" C0 "], %[" C0 "]\n\t"          \
  "vpaddd %%ymm3, %[" C0 "], %[" C0 "]\n\t"          \
  HALF2(C1)

#define SLIVER_IGEMM_HALF2(C1)                       \
  "vpmaddwd 64(%[b]), %%ymm0, %%ymm2\n\t"            \
  "vpmaddwd 96(%[b]), %%ymm1, %%ymm3\n\t"            \
  "vpaddd %%ymm2, %[" C1 "], %[" C1 "]\n\t"          \
  "vpaddd %%ymm3, %[" C1 "], %[" C1 "]\n\t"

// Three rows of one group (accumulators c[0..5]); two statements per group because one asm
// statement takes at most 30 operands.
template <bool kSigned, bool kHalf>
inline void group3(const uint8_t* r0, const uint8_t* r1, const uint8_t* r2, int64_t off,
                   const int16_t* b, __m256i& c0, __m256i& c1, __m256i& c2, __m256i& c3,
                   __m256i& c4, __m256i& c5) {
  alignas(32) static const uint32_t kFlip[8] = {0x80808080u, 0x80808080u, 0x80808080u,
                                                0x80808080u, 0x80808080u, 0x80808080u,
                                                0x80808080u, 0x80808080u};
  alignas(32) static const uint32_t kMask[8] = {0x00ff00ffu, 0x00ff00ffu, 0x00ff00ffu,
                                                0x00ff00ffu, 0x00ff00ffu, 0x00ff00ffu,
                                                0x00ff00ffu, 0x00ff00ffu};
#define BODY                                                                              \
  SLIVER_IGEMM_ROW("r0", "c0", "c1")                                                      \
  SLIVER_IGEMM_ROW("r1", "c2", "c3") SLIVER_IGEMM_ROW("r2", "c4", "c5")
#define OPERANDS                                                                          \
  : [c0] "+x"(c0), [c1] "+x"(c1), [c2] "+x"(c2), [c3] "+x"(c3), [c4] "+x"(c4), [c5] "+x"(c5) \
  : [r0] "r"(r0), [r1] "r"(r1), [r2] "r"(r2), [off] "r"(off), [b] "r"(b), [flip] "m"(kFlip), \
    [mask] "m"(kMask)                                                                     \
  : "xmm0", "xmm1", "xmm2", "xmm3", "memory"
  if constexpr (kSigned && kHalf) {
#define FLIP "vpxor %[flip], %%ymm0, %%ymm0\n\t"
#define HALF2(C1)
    __asm__(BODY OPERANDS);
#undef FLIP
#undef HALF2
  } else if constexpr (kSigned) {
#define FLIP "vpxor %[flip], %%ymm0, %%ymm0\n\t"
#define HALF2(C1) SLIVER_IGEMM_HALF2(C1)
    __asm__(BODY OPERANDS);
#undef FLIP
#undef HALF2
  } else if constexpr (kHalf) {
#define FLIP
#define HALF2(C1)
    __asm__(BODY OPERANDS);
#undef FLIP
#undef HALF2
  } else {
#define FLIP
#define HALF2(C1) SLIVER_IGEMM_HALF2(C1)
    __asm__(BODY OPERANDS);
#undef FLIP
#undef HALF2
  }
#undef BODY
#undef OPERANDS
}

// Requantizes the mr finished rows of c (row i in c[2 i], c[2 i + 1]) into the tile.
template <RequantForm kForm, bool kHalf>
void finish_rows(const Q8IgemmTile& t, const __m256i* c) {
  const Q8ConvRequant& rq = *t.rq;
  const q8avx2::RequantConsts k(rq);
  const __m256i t0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rq.col_term + t.n0));
  const __m256i t1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rq.col_term + t.n0 + 8));
  const double* m = rq.multiplier + t.n0;
  const float* m32 = rq.multiplier_f32 + t.n0;
  uint8_t* y = t.y;
  const int64_t ldy = t.ldy, nc = t.nc;
  for (int64_t i = 0; i < t.mr; ++i) {
    const __m256i v0 = _mm256_add_epi32(c[2 * i], t0);
    const __m128i q = kHalf ? q8avx2::requant8<kForm>(v0, m, m32, k)
                            : q8avx2::requant16<kForm>(v0, _mm256_add_epi32(c[2 * i + 1], t1),
                                                       m, m32, k);
    q8avx2::store_bytes(y + i * ldy, q, nc);
  }
}

template <bool kHalf>
void finish(const Q8IgemmTile& t, const __m256i* c) {
  switch (t.rq->form) {
    case RequantForm::short_f32: return finish_rows<RequantForm::short_f32, kHalf>(t, c);
    case RequantForm::short_f64: return finish_rows<RequantForm::short_f64, kHalf>(t, c);
    default: return finish_rows<RequantForm::full, kHalf>(t, c);
  }
}

// Rows past mr repeat row 0 (their sums are computed and dropped): one code path.
template <bool kSigned, bool kHalf>
void igemm(const Q8IgemmTile& t) {
  // Named accumulators, not an array: GCC keeps an array in memory around the tap loop.
  __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
  __m256i c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
  const int16_t* b = t.b;
  const int64_t groups = (t.c + 3) / 4, last = t.c - 4, mr = t.mr;
  for (int64_t tap = 0; tap < t.ntaps; ++tap) {
    const uint8_t* const* r = t.rows + kQ8IgemmMR * tap;
    const uint8_t* r0 = r[0];
    const uint8_t* r1 = r[mr > 1 ? 1 : 0];
    const uint8_t* r2 = r[mr > 2 ? 2 : 0];
    const uint8_t* r3 = r[mr > 3 ? 3 : 0];
    const uint8_t* r4 = r[mr > 4 ? 4 : 0];
    const uint8_t* r5 = r[mr > 5 ? 5 : 0];
    for (int64_t g = 0; g < groups; ++g, b += 64) {
      const int64_t off = std::min(4 * g, last);
      group3<kSigned, kHalf>(r0, r1, r2, off, b, c0, c1, c2, c3, c4, c5);
      group3<kSigned, kHalf>(r3, r4, r5, off, b, c6, c7, c8, c9, c10, c11);
    }
  }
  const __m256i c[12] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11};
  finish<kHalf>(t, c);
}

template <bool kSigned>
void dispatch(const Q8IgemmTile& t) {
  assert(t.mr >= 1 && t.mr <= kQ8IgemmMR && t.nc >= 1 && t.nc <= 16 && t.c >= 4 && t.ntaps >= 1);
  assert((reinterpret_cast<uintptr_t>(t.b) & 31) == 0);
  if (t.nc <= 8) return igemm<kSigned, true>(t);
  igemm<kSigned, false>(t);
}

}  // namespace

void qu8_igemm_6x16c4_avx2(const Q8IgemmTile& t) { dispatch<false>(t); }
void qs8_igemm_6x16c4_avx2(const Q8IgemmTile& t) { dispatch<true>(t); }

}  // namespace sliver
