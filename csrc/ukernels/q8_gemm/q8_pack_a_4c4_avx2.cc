// q8_pack_a_4c4_avx2: packs A for the 4x16c4 kernels (both QAFormats) 32 k at a time, with the
// row sums; same output as q8_pack_a_scalar (q8_pack.cc documents the layout).
//
// Per 4-row panel and 32 k: one 32-byte load per row, a dword transpose (unpack 32 then 64)
// turns rows into k groups (row i's 4 bytes at 4i; each 128-bit lane yields 4 groups), then the
// format is a byte op away: x ^ 0x80 for offset_u8, |x| and (x < 0) for sign_mag. Row sums stay
// in s16 pair sums (|pair| <= 256) for up to kWiden chunks before widening. The last partial
// chunk goes through a padded copy, so no byte past a row's K is read.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "sliver/qgemm.h"

namespace sliver {
namespace {

constexpr int kMR = 4, kKR = 4, kChunk = 32, kGroups = kChunk / kKR;
constexpr int kPrefetch = 512;  // bytes ahead in each row
constexpr int kWiden = 64;      // chunks per s16 accumulation: 64 * 2 * 256 < 32768
constexpr int kU8Group = kMR * kKR, kSmGroup = 2 * kMR * kKR;  // bytes per k group

inline int32_t hsum8(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

inline void store(uint8_t* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }

class PanelPacker {
 public:
  explicit PanelPacker(bool want_neg) : want_neg_(want_neg) {
    for (int i = 0; i < kMR; ++i) sum16_[i] = abs16_[i] = sum32_[i] = abs32_[i] = zero();
  }

  // x[i]: 32 k of row i (signed). Writes 8 k groups to u8 / sm (either may be null).
  void chunk(const __m256i (&x)[kMR], uint8_t* u8, uint8_t* sm) {
    const __m256i ones8 = _mm256_set1_epi8(1);
    for (int i = 0; i < kMR; ++i) {
      sum16_[i] = _mm256_add_epi16(sum16_[i], _mm256_maddubs_epi16(ones8, x[i]));
      if (want_neg_)
        abs16_[i] = _mm256_add_epi16(abs16_[i], _mm256_maddubs_epi16(_mm256_abs_epi8(x[i]), ones8));
    }
    if (++pending_ == kWiden) widen();
    // g[q]: group q in the low lane, group q + 4 in the high lane
    const __m256i t0 = _mm256_unpacklo_epi32(x[0], x[1]), t1 = _mm256_unpacklo_epi32(x[2], x[3]);
    const __m256i t2 = _mm256_unpackhi_epi32(x[0], x[1]), t3 = _mm256_unpackhi_epi32(x[2], x[3]);
    const __m256i g[4] = {_mm256_unpacklo_epi64(t0, t1), _mm256_unpackhi_epi64(t0, t1),
                          _mm256_unpacklo_epi64(t2, t3), _mm256_unpackhi_epi64(t2, t3)};
    if (u8) {
      const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
      __m256i u[4];
      for (int q = 0; q < 4; ++q) u[q] = _mm256_xor_si256(g[q], flip);
      store(u8 + 0 * kU8Group, _mm256_permute2x128_si256(u[0], u[1], 0x20));  // groups 0, 1
      store(u8 + 2 * kU8Group, _mm256_permute2x128_si256(u[2], u[3], 0x20));  // groups 2, 3
      store(u8 + 4 * kU8Group, _mm256_permute2x128_si256(u[0], u[1], 0x31));  // groups 4, 5
      store(u8 + 6 * kU8Group, _mm256_permute2x128_si256(u[2], u[3], 0x31));  // groups 6, 7
    }
    if (sm) {
      for (int q = 0; q < 4; ++q) {
        const __m256i mag = _mm256_abs_epi8(g[q]), sgn = _mm256_cmpgt_epi8(zero(), g[q]);
        store(sm + q * kSmGroup, _mm256_permute2x128_si256(mag, sgn, 0x20));
        store(sm + (q + 4) * kSmGroup, _mm256_permute2x128_si256(mag, sgn, 0x31));
      }
    }
  }

  void finish(int32_t* rowsum, int32_t* negsum, int rows) {
    widen();
    for (int i = 0; i < rows; ++i) {
      const int32_t s = hsum8(sum32_[i]);
      rowsum[i] = s;
      // |x| - x = 2 max(-x, 0); exact for K <= 2^24 (pack_q8_b checks)
      negsum[i] =
          want_neg_ ? static_cast<int32_t>(
                          (static_cast<uint32_t>(hsum8(abs32_[i])) - static_cast<uint32_t>(s)) / 2)
                    : 0;
    }
  }

 private:
  static __m256i zero() { return _mm256_setzero_si256(); }
  void widen() {
    const __m256i ones16 = _mm256_set1_epi16(1);
    for (int i = 0; i < kMR; ++i) {
      sum32_[i] = _mm256_add_epi32(sum32_[i], _mm256_madd_epi16(sum16_[i], ones16));
      abs32_[i] = _mm256_add_epi32(abs32_[i], _mm256_madd_epi16(abs16_[i], ones16));
      sum16_[i] = abs16_[i] = zero();
    }
    pending_ = 0;
  }

  bool want_neg_;
  int pending_ = 0;
  __m256i sum16_[kMR], abs16_[kMR], sum32_[kMR], abs32_[kMR];
};

}  // namespace

void q8_pack_a_avx2(int64_t rows, int64_t K, int64_t kp, const void* a, DType a_type, int64_t lda,
                    uint8_t* dst_u8, uint8_t* dst_sm, int32_t* rowsum, int32_t* negsum) {
  const uint8_t* au = static_cast<const uint8_t*>(a);
  const uint8_t flip_byte = a_type == DType::u8 ? 0x80 : 0x00;  // raw ^ flip = x
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(flip_byte));
  const int64_t panels = (rows + kMR - 1) / kMR, kfull = K / kChunk * kChunk;
  for (int64_t p = 0; p < panels; ++p) {
    const uint8_t* src[kMR];
    for (int i = 0; i < kMR; ++i) src[i] = au + std::min(p * kMR + i, rows - 1) * lda;
    uint8_t* u8 = dst_u8 ? dst_u8 + p * kp * kMR : nullptr;
    uint8_t* sm = dst_sm ? dst_sm + p * kp * kMR * 2 : nullptr;
    PanelPacker pk(dst_sm != nullptr);
    __m256i x[kMR];
    for (int64_t k = 0; k < kfull; k += kChunk) {
      // Four interleaved row streams: help the hardware prefetcher (A is usually cold).
      for (int i = 0; i < kMR; ++i)
        _mm_prefetch(reinterpret_cast<const char*>(src[i] + k + kPrefetch), _MM_HINT_T0);
      for (int i = 0; i < kMR; ++i)
        x[i] = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src[i] + k)),
                                flip);
      pk.chunk(x, u8, sm);
      if (u8) u8 += kGroups * kU8Group;
      if (sm) sm += kGroups * kSmGroup;
    }
    if (kfull < kp) {  // K tail: x = 0 (raw byte = flip) up to the chunk, keep kp - kfull k
      for (int i = 0; i < kMR; ++i) {
        alignas(32) uint8_t buf[kChunk];
        std::memset(buf, flip_byte, sizeof(buf));
        std::memcpy(buf, src[i] + kfull, static_cast<size_t>(K - kfull));
        x[i] = _mm256_xor_si256(_mm256_load_si256(reinterpret_cast<const __m256i*>(buf)), flip);
      }
      alignas(32) uint8_t tu8[kGroups * kU8Group], tsm[kGroups * kSmGroup];
      pk.chunk(x, u8 ? tu8 : nullptr, sm ? tsm : nullptr);
      const size_t groups = static_cast<size_t>((kp - kfull) / kKR);
      if (u8) std::memcpy(u8, tu8, groups * kU8Group);
      if (sm) std::memcpy(sm, tsm, groups * kSmGroup);
    }
    pk.finish(rowsum + p * kMR, negsum + p * kMR,
              static_cast<int>(std::min<int64_t>(kMR, rows - p * kMR)));
  }
}

}  // namespace sliver
