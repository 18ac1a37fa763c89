// q8_pack_a_4c4_avx2: packs A for the 4x16c4 kernels (both QAFormats) 16 k at a time, with the
// row sums; same output as q8_pack_a_scalar (q8_pack.cc documents the layout).
//
// Per 4-row panel and 16 k: one 16-byte load per row, a 4x4 transpose of dwords turns rows into
// k groups (row i's 4 bytes at 4i), then the format is a byte op away: x ^ 0x80 for offset_u8,
// |x| and (x < 0) for sign_mag. The last partial chunk goes through a padded copy, so no byte
// past a row's K is read.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "sliver/qgemm.h"

namespace sliver {
namespace {

constexpr int kMR = 4, kKR = 4, kChunk = 16;

inline int32_t hsum(__m128i v) {
  v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(v);
}

struct PanelPacker {
  uint8_t* u8;  // next group of the offset_u8 panel, or nullptr
  uint8_t* sm;  // next group of the sign_mag panel, or nullptr
  __m128i sum[kMR], abs_sum[kMR];

  // x[i]: 16 k of row i as signed bytes; writes the first `groups` (<= 4) k groups.
  void chunk(const __m128i (&x)[kMR], int groups) {
    const __m128i ones8 = _mm_set1_epi8(1), ones16 = _mm_set1_epi16(1);
    for (int i = 0; i < kMR; ++i) {
      const __m128i s = _mm_madd_epi16(_mm_maddubs_epi16(ones8, x[i]), ones16);
      const __m128i a = _mm_madd_epi16(_mm_maddubs_epi16(_mm_abs_epi8(x[i]), ones8), ones16);
      sum[i] = _mm_add_epi32(sum[i], s);
      abs_sum[i] = _mm_add_epi32(abs_sum[i], a);
    }
    const __m128i t0 = _mm_unpacklo_epi32(x[0], x[1]), t1 = _mm_unpacklo_epi32(x[2], x[3]);
    const __m128i t2 = _mm_unpackhi_epi32(x[0], x[1]), t3 = _mm_unpackhi_epi32(x[2], x[3]);
    const __m128i g[4] = {_mm_unpacklo_epi64(t0, t1), _mm_unpackhi_epi64(t0, t1),
                          _mm_unpacklo_epi64(t2, t3), _mm_unpackhi_epi64(t2, t3)};
    const __m128i flip = _mm_set1_epi8(static_cast<char>(0x80)), zero = _mm_setzero_si128();
    for (int q = 0; q < groups; ++q) {
      if (u8) {
        _mm_store_si128(reinterpret_cast<__m128i*>(u8), _mm_xor_si128(g[q], flip));
        u8 += kMR * kKR;
      }
      if (sm) {
        _mm_store_si128(reinterpret_cast<__m128i*>(sm), _mm_abs_epi8(g[q]));
        _mm_store_si128(reinterpret_cast<__m128i*>(sm + kMR * kKR), _mm_cmpgt_epi8(zero, g[q]));
        sm += 2 * kMR * kKR;
      }
    }
  }
};

}  // namespace

void q8_pack_a_avx2(int64_t rows, int64_t K, int64_t kp, const void* a, DType a_type, int64_t lda,
                    uint8_t* dst_u8, uint8_t* dst_sm, int32_t* rowsum, int32_t* negsum) {
  const uint8_t* au = static_cast<const uint8_t*>(a);
  const uint8_t flip_byte = a_type == DType::u8 ? 0x80 : 0x00;  // raw ^ flip = x
  const __m128i flip = _mm_set1_epi8(static_cast<char>(flip_byte));
  const int64_t panels = (rows + kMR - 1) / kMR, kfull = K / kChunk * kChunk;
  for (int64_t p = 0; p < panels; ++p) {
    const uint8_t* src[kMR];
    for (int i = 0; i < kMR; ++i) src[i] = au + std::min(p * kMR + i, rows - 1) * lda;
    PanelPacker pk{dst_u8 ? dst_u8 + p * kp * kMR : nullptr,
                   dst_sm ? dst_sm + p * kp * kMR * 2 : nullptr,
                   {},
                   {}};
    for (int i = 0; i < kMR; ++i) pk.sum[i] = pk.abs_sum[i] = _mm_setzero_si128();
    __m128i x[kMR];
    for (int64_t k = 0; k < kfull; k += kChunk) {
      for (int i = 0; i < kMR; ++i)
        x[i] = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src[i] + k)), flip);
      pk.chunk(x, kChunk / kKR);
    }
    if (kfull < kp) {  // K tail: pad with x = 0 (raw byte = flip) up to the chunk
      for (int i = 0; i < kMR; ++i) {
        alignas(16) uint8_t buf[kChunk];
        std::memset(buf, flip_byte, sizeof(buf));
        std::memcpy(buf, src[i] + kfull, static_cast<size_t>(K - kfull));
        x[i] = _mm_xor_si128(_mm_load_si128(reinterpret_cast<const __m128i*>(buf)), flip);
      }
      pk.chunk(x, static_cast<int>((kp - kfull) / kKR));
    }
    for (int i = 0; i < kMR && p * kMR + i < rows; ++i) {
      const int32_t s = hsum(pk.sum[i]), as = hsum(pk.abs_sum[i]);
      rowsum[p * kMR + i] = s;
      // |x| - x = 2 max(-x, 0); both sums are exact in int32 for K < 2^24
      negsum[p * kMR + i] =
          static_cast<int32_t>((static_cast<uint32_t>(as) - static_cast<uint32_t>(s)) / 2);
    }
  }
}

}  // namespace sliver
