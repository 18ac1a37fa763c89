// q8_vlut1_avx2: 256-entry lookup, 32 codes per step by byte shuffles over 16-entry slices.
// q8_vlut2_avx2: pair-table gather, 32 outputs per step as four 8-lane vpgatherdd of 32-bit
// words (hence the table's 3 padding bytes), low bytes packed.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "q8_simd_avx2.h"
#include "q8_vlut.h"

namespace sliver {
namespace {

using namespace q8_simd_avx2;  // NOLINT(build/namespaces): this folder's helpers

inline __m256i index8(const uint8_t* x) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x)));
}

// 32 outputs for the indices from idx(k), k = 0..3 (8 lanes each).
template <class Index>
inline void gather32(const int* base, Index&& idx, uint8_t* y) {
  const __m256i low = _mm256_set1_epi32(0xff);
  __m256i c[4];
  for (int k = 0; k < 4; ++k) c[k] = _mm256_and_si256(_mm256_i32gather_epi32(base, idx(k), 1), low);
  pack32(c[0], c[1], c[2], c[3], false, y);
}

}  // namespace

void q8_vlut1_avx2(const uint8_t* table, int64_t n, const uint8_t* x, uint8_t* y) {
  // Slice k holds entries 16k..16k+15 in both lanes. pshufb reads the low 4 bits of an index
  // byte and gives 0 when its bit 7 is set: x ^ 16k has its high nibble clear exactly for the
  // codes of slice k, and a saturating + 0x70 sets bit 7 on every other byte.
  __m256i slice[16];
  for (int k = 0; k < 16; ++k)
    slice[k] = _mm256_broadcastsi128_si256(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(table + 16 * k)));
  const __m256i push = _mm256_set1_epi8(0x70);
  drive1(n, x, y, [&](const uint8_t* px, uint8_t* py) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(px));
    __m256i out = _mm256_setzero_si256();
    for (int k = 0; k < 16; ++k) {
      const __m256i idx = _mm256_adds_epu8(_mm256_xor_si256(v, _mm256_set1_epi8(
                                                                static_cast<char>(k << 4))),
                                           push);
      out = _mm256_or_si256(out, _mm256_shuffle_epi8(slice[k], idx));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(py), out);
  });
}

void q8_vlut2_avx2(const uint8_t* table, int64_t n, const uint8_t* a, int64_t a_stride,
                   const uint8_t* b, int64_t b_stride, uint8_t* y) {
  const int* base = reinterpret_cast<const int*>(table);
  if (a_stride && b_stride) {
    drive2(n, a, b, y, [&](const uint8_t* pa, const uint8_t* pb, uint8_t* py) {
      gather32(base, [&](int k) {
        return _mm256_or_si256(_mm256_slli_epi32(index8(pa + 8 * k), 8), index8(pb + 8 * k));
      }, py);
    });
  } else if (b_stride) {
    const __m256i row = _mm256_set1_epi32(static_cast<int>(a[0]) << 8);
    drive1(n, b, y, [&](const uint8_t* pb, uint8_t* py) {
      gather32(base, [&](int k) { return _mm256_or_si256(row, index8(pb + 8 * k)); }, py);
    });
  } else if (a_stride) {
    const __m256i col = _mm256_set1_epi32(b[0]);
    drive1(n, a, y, [&](const uint8_t* pa, uint8_t* py) {
      gather32(base, [&](int k) {
        return _mm256_or_si256(_mm256_slli_epi32(index8(pa + 8 * k), 8), col);
      }, py);
    });
  } else {
    std::memset(y, table[(static_cast<int64_t>(a[0]) << 8) | b[0]], static_cast<size_t>(n));
  }
}

}  // namespace sliver
