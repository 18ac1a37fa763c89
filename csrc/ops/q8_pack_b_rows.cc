// Packing an activation B (K x N, rows contiguous) for the q8 GEMM on every run: attention's
// Q x K^T and P x V, MatMulInteger of two activations.
//
// Weights are packed once (csrc/pack/q8_pack.cc walks them byte by byte, which is fine once per
// session); an activation B is packed once per run, as often as the GEMM reads it, so this
// packer builds each KR-byte group of the 4x16c4 layout (qgemm.h: panel p holds columns
// [16p, 16p + 16) as K/4 groups of 16 columns x 4 bytes) as one 32-bit word from four source
// rows, over 16 columns at a time -- loops a compiler vectorises for any ISA. It produces the
// PackedQ8B pack_q8_b does (the same bytes, column sums and betas) except that every panel is
// marked for the exact kernel: testing weight pairs for the fast chain costs more than it saves
// on activations, whose re-centred codes fill the whole s8 range and almost never pass. The
// exact kernel is exact for every input, so results are the same bits either way.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "ops/q8_matmul.h"
#include "sliver/error.h"
#include "sliver/qgemm.h"

namespace sliver::ops::q {
namespace {

constexpr int kNR = 16, kKR = 4;
constexpr size_t kAlign = 64;
constexpr int64_t kMaxK = int64_t{1} << 24;

// Whether every q8 kernel reads the 16x4 layout this file writes.
bool layout_matches() {
  static const bool ok = [] {
    for (const Q8GemmKernel* k : q8_gemm_kernels())
      if (k->nr != kNR || k->kr != kKR) return false;
    return true;
  }();
  return ok;
}

// One group of one panel: 16 columns x 4 source rows (rows past K read the zero row) as 16
// words of 4 bytes w = b - shift, and the group's share of the column sums. Written so that
// compilers vectorise it: no branches, the u8 shift folded into an XOR and a constant.
template <bool kU8>
inline void pack_group(const uint8_t* const r[kKR], int8_t* dst, int32_t* sum) {
  uint32_t words[kNR];
  for (int j = 0; j < kNR; ++j) {
    const uint32_t b0 = r[0][j], b1 = r[1][j], b2 = r[2][j], b3 = r[3][j];
    words[j] = (b0 | b1 << 8 | b2 << 16 | b3 << 24) ^ (kU8 ? 0x80808080u : 0u);
    if constexpr (kU8) {
      sum[j] += static_cast<int32_t>(b0 + b1 + b2 + b3) - 4 * 128;
    } else {
      sum[j] += static_cast<int8_t>(b0) + static_cast<int8_t>(b1) + static_cast<int8_t>(b2) +
                static_cast<int8_t>(b3);
    }
  }
  std::memcpy(dst, words, sizeof(words));
}

template <bool kU8>
void pack_panels(const uint8_t* src, int64_t K, int64_t N, int64_t ldb, PackedQ8B& pk) {
  const uint8_t zero_code = kU8 ? 0x80 : 0x00;  // the code whose w is 0
  uint8_t pad_row[kNR];
  std::memset(pad_row, zero_code, sizeof(pad_row));
  uint8_t tail[kKR][kNR];  // the last panel's columns, padded to 16
  const int64_t kgroups = pk.kp / kKR;
  for (int64_t p = 0; p < pk.panels(); ++p) {
    const int64_t j0 = p * kNR, nj = std::min<int64_t>(kNR, N - j0);
    int8_t* dst = pk.data.get() + p * pk.kp * kNR;
    int32_t sum[kNR] = {};
    for (int64_t g = 0; g < kgroups; ++g) {
      const uint8_t* r[kKR];
      for (int kk = 0; kk < kKR; ++kk) {
        const int64_t k = g * kKR + kk;
        if (k >= K) {
          r[kk] = pad_row;
        } else if (nj == kNR) {
          r[kk] = src + k * ldb + j0;
        } else {
          std::memset(tail[kk], zero_code, kNR);
          std::memcpy(tail[kk], src + k * ldb + j0, static_cast<size_t>(nj));
          r[kk] = tail[kk];
        }
      }
      pack_group<kU8>(r, dst + g * kNR * kKR, sum);
    }
    for (int64_t j = 0; j < nj; ++j) pk.colsum[j0 + j] = sum[j];
  }
}

}  // namespace

std::shared_ptr<PackedQ8B> pack_q8_b_rows(int64_t K, int64_t N, const void* b, DType b_type,
                                          int64_t ldb, const int32_t* zero_point,
                                          bool zero_point_per_column) {
  if (!layout_matches())
    return pack_q8_b(K, N, b, b_type, ldb, false, zero_point, zero_point_per_column);
  SLIVER_CHECK(K >= 0 && N >= 0 && K <= kMaxK, "pack_q8_b_rows: bad shape K=", K, " N=", N);
  SLIVER_CHECK(b_type == DType::u8 || b_type == DType::i8, "pack_q8_b_rows: B must be u8 or i8");
  SLIVER_CHECK(ldb >= N, "pack_q8_b_rows: ldb=", ldb, " below N=", N);
  const int32_t shift = b_type == DType::u8 ? 128 : 0;
  const int32_t lo = b_type == DType::u8 ? 0 : -128, hi = lo + 255;

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
  pk->colsum.assign(np, 0);
  pk->beta.assign(np, 0);
  pk->panel_fast_safe.assign(panels, 0);  // every panel on the exact kernel (see the top)
  for (int64_t n = 0; n < N; ++n) {
    const int32_t zb = zero_point[zero_point_per_column ? n : 0];
    SLIVER_CHECK(zb >= lo && zb <= hi, "pack_q8_b_rows: zero point ", zb, " out of range for ",
                 dtype_name(b_type));
    pk->beta[n] = shift - zb;
  }

  const uint8_t* src = static_cast<const uint8_t*>(b);
  if (b_type == DType::u8) {
    pack_panels<true>(src, K, N, ldb, *pk);
  } else {
    pack_panels<false>(src, K, N, ldb, *pk);
  }
  return pk;
}

}  // namespace sliver::ops::q
