// Packing for the 8-bit GEMM (qgemm.h): B once per weight, A once per call and cache block.
//
// Packing re-centres both operands to signed values (x = a - a_shift, w = b - b_shift), lays
// them out as the kernels read them (k groups of KR bytes, so one 32-bit broadcast of A meets
// one dword per column of B) and computes the sums the zero-point correction needs: column sums
// of w here, row sums of x while packing A. It is also where exactness is decided: a B panel is
// "fast-safe" when none of its weight pairs can saturate vpmaddubsw's s16 pair sum for any u8
// activation, so the cheaper classic chain gives the exact answer there, or can be made so by
// moving a few weights out into pair fixes.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "sliver/error.h"
#include "sliver/qgemm.h"

namespace sliver {
namespace {

constexpr int kNR = 16, kKR = 4, kMR = 4;  // the 4x16c4 kernels of q8_gemm.inc
constexpr size_t kAlign = 64;
constexpr int64_t kMaxK = int64_t{1} << 24;

// Largest pair sum magnitude vpmaddubsw can hold, over 255 (the largest u).
constexpr int kMaxSafePairPos = 32767 / 255;  // 128
constexpr int kMaxSafePairNeg = 32768 / 255;  // 128

// The amount an unsafe pair's larger weight gives up (see qgemm.h): only same-signed pairs can
// be unsafe, and after the move their sum is +-128.
int pair_excess(int w0, int w1) {
  const int s = w0 + w1;
  return s > 0 ? s - kMaxSafePairPos : s + kMaxSafePairNeg;
}

// Most fixes a panel keeps: each costs a tile about MR scalar multiply-adds, against the
// ~1.2 cycles per k group the fast chain saves over the exact kernel on Zen 3.
int64_t max_fixes(int64_t kp) { return kp / kKR / 4; }

// Makes panel `dst` (kp x kNR) fast-safe with pair fixes appended to `fixes` when that takes
// at most max_fixes(kp); returns whether the panel is fast-safe (it is left as is otherwise).
bool fix_panel(int8_t* dst, int64_t kp, std::vector<Q8PairFix>& fixes) {
  // Pairs are (k, k+1) for even k inside a group; padding bytes are 0 and always safe.
  int64_t unsafe = 0;
  for (int64_t i = 0; i < kp * kNR; i += 2) unsafe += q8_pair_fast_safe(dst[i], dst[i + 1]) ? 0 : 1;
  if (unsafe == 0) return true;
  if (unsafe > max_fixes(kp)) return false;
  for (int64_t i = 0; i < kp * kNR; i += 2) {
    if (q8_pair_fast_safe(dst[i], dst[i + 1])) continue;
    const int64_t big = std::abs(dst[i]) >= std::abs(dst[i + 1]) ? i : i + 1;
    const int r = pair_excess(dst[i], dst[i + 1]);
    dst[big] = static_cast<int8_t>(dst[big] - r);
    const int64_t g = big / (kNR * kKR), o = big % (kNR * kKR);
    fixes.push_back({static_cast<int32_t>(g * kKR + o % kKR), static_cast<int16_t>(o / kKR),
                     static_cast<int16_t>(r)});
  }
  return true;
}

int32_t dtype_shift(DType t) { return t == DType::u8 ? 128 : 0; }

}  // namespace

std::shared_ptr<PackedQ8B> pack_q8_b(int64_t K, int64_t N, const void* b, DType b_type, int64_t ldb,
                                     bool trans_b, const int32_t* zero_point,
                                     bool zero_point_per_column) {
  SLIVER_CHECK(K >= 0 && N >= 0, "pack_q8_b: negative shape K=", K, " N=", N);
  // Row sums of |x| (<= 128 K) must not wrap in packing A; see qgemm.h for the int32 contract.
  SLIVER_CHECK(K <= kMaxK, "pack_q8_b: K=", K, " above ", kMaxK);
  SLIVER_CHECK(b_type == DType::u8 || b_type == DType::i8, "pack_q8_b: B must be u8 or i8, got ",
               dtype_name(b_type));
  SLIVER_CHECK(K * N == 0 || b != nullptr, "pack_q8_b: null B");
  SLIVER_CHECK(ldb >= (trans_b ? K : N), "pack_q8_b: ldb=", ldb, " too small");
  SLIVER_CHECK(zero_point != nullptr, "pack_q8_b: null zero point");
  const int32_t lo = b_type == DType::u8 ? 0 : -128, hi = b_type == DType::u8 ? 255 : 127;

  auto pk = std::make_shared<PackedQ8B>();
  pk->K = K;
  pk->N = N;
  pk->nr = kNR;
  pk->kr = kKR;
  pk->kp = (K + kKR - 1) / kKR * kKR;
  pk->b_type = b_type;
  pk->per_column_zero_point = zero_point_per_column;
  const int64_t panels = pk->panels(), np = panels * kNR;
  const size_t bytes =
      std::max<size_t>(kAlign, (panels * pk->kp * kNR + kAlign - 1) / kAlign * kAlign);
  int8_t* data = static_cast<int8_t*>(std::aligned_alloc(kAlign, bytes));
  if (!data) throw std::bad_alloc();
  pk->data = std::shared_ptr<int8_t>(data, [](int8_t* p) { std::free(p); });
  std::memset(data, 0, bytes);
  pk->colsum.assign(np, 0);
  pk->beta.assign(np, 0);
  pk->abssum.assign(N, 0);
  pk->panel_fast_safe.assign(panels, 1);
  pk->fix_begin.assign(panels + 1, 0);

  const int32_t shift = dtype_shift(b_type);
  const uint8_t* bu = static_cast<const uint8_t*>(b);
  for (int64_t n = 0; n < N; ++n) {
    const int32_t zb = zero_point[zero_point_per_column ? n : 0];
    SLIVER_CHECK(zb >= lo && zb <= hi, "pack_q8_b: zero point ", zb, " out of range for ",
                 dtype_name(b_type));
    pk->beta[n] = shift - zb;
  }
  for (int64_t p = 0; p < panels; ++p) {
    int8_t* dst = data + p * pk->kp * kNR;
    const int nj = static_cast<int>(std::min<int64_t>(kNR, N - p * kNR));
    uint32_t sum[kNR] = {};
    auto put = [&](int j, int64_t k) {
      const int64_t n = p * kNR + j;
      const uint8_t raw = bu[trans_b ? n * ldb + k : k * ldb + n];
      const int32_t w =
          (b_type == DType::u8 ? int32_t{raw} : int32_t{static_cast<int8_t>(raw)}) - shift;
      dst[(k / kKR) * kNR * kKR + j * kKR + k % kKR] = static_cast<int8_t>(w);
      sum[j] += static_cast<uint32_t>(w);
      pk->abssum[n] += std::abs(w + pk->beta[n]);  // |b - zb|
    };
    // Walk the source in its memory order (packing a large weight is then a streaming pass).
    if (trans_b) {
      for (int j = 0; j < nj; ++j)
        for (int64_t k = 0; k < K; ++k) put(j, k);
    } else {
      for (int64_t k = 0; k < K; ++k)
        for (int j = 0; j < nj; ++j) put(j, k);
    }
    // Column sums stay those of the true weights: the fixes add the rest of the product back.
    for (int j = 0; j < nj; ++j) pk->colsum[p * kNR + j] = static_cast<int32_t>(sum[j]);
    const bool safe = fix_panel(dst, pk->kp, pk->fixes);
    pk->fix_begin[p + 1] = static_cast<int64_t>(pk->fixes.size());
    pk->panel_fast_safe[p] = safe ? 1 : 0;
    pk->fast_panels += safe ? 1 : 0;
  }
  if (pk->fixes.empty()) pk->fix_begin.clear();
  return pk;
}

void q8_pack_a_scalar(int64_t rows, int64_t K, int64_t kp, const void* a, DType a_type, int64_t lda,
                      uint8_t* dst_u8, uint8_t* dst_sm, int32_t* rowsum, int32_t* negsum) {
  const uint8_t* au = static_cast<const uint8_t*>(a);
  // x = a - a_shift as a byte: u8 input flips the top bit, s8 input is x already.
  const uint8_t flip = a_type == DType::u8 ? 0x80 : 0x00;
  const int64_t panels = (rows + kMR - 1) / kMR;
  for (int64_t p = 0; p < panels; ++p) {
    for (int i = 0; i < kMR; ++i) {
      const int64_t r = std::min(p * kMR + i, rows - 1);  // rows past the end repeat the last
      const uint8_t* src = au + r * lda;
      uint32_t sum = 0, neg = 0;
      for (int64_t k = 0; k < kp; ++k) {
        const int32_t x = k < K ? static_cast<int8_t>(src[k] ^ flip) : 0;  // k padding: x = 0
        sum += static_cast<uint32_t>(x);
        neg += static_cast<uint32_t>(x < 0 ? -x : 0);
        const int64_t g = k / kKR, o = i * kKR + k % kKR;
        if (dst_u8) dst_u8[p * kp * kMR + g * kMR * kKR + o] = static_cast<uint8_t>(x + 128);
        if (dst_sm) {
          uint8_t* grp = dst_sm + p * kp * kMR * 2 + g * kMR * kKR * 2;
          grp[o] = static_cast<uint8_t>(x < 0 ? -x : x);
          grp[kMR * kKR + o] = x < 0 ? 0xff : 0x00;
        }
      }
      if (p * kMR + i < rows) {
        rowsum[p * kMR + i] = static_cast<int32_t>(sum);
        negsum[p * kMR + i] = static_cast<int32_t>(neg);
      }
    }
  }
}

}  // namespace sliver
