// Pruned weights -> sparse formats (sparse.h): detection of the zero structure, the choice of
// block height R and K chunk, and the packing itself. Runs once per weight at session creation.
//
// What "zero" means: 0.f for FP32 (so -0.f is zero too); for INT8 the weight's zero point (of its
// output channel), because that is the value whose dequantized weight is 0.
//
// Choosing R. An entry of an Rx1 block costs about the same as R entries of R = 1 in multiply-adds
// but shares its activation loads (and, for INT8, the interleaving shuffles) between R rows, so
// its cost per stored weight is lower. Packing with R costs (nonzero R-blocks) x (cost of an
// R-entry); the padding weights of partly filled blocks are paid for. kEntryCost holds the cost
// per stored weight relative to R = 1, measured with benchmarks/bench_sparse.py (--entry-cost)
// on Zen 3; the cheapest R wins, so an exact 4x1 or 8x1 pattern takes its blocks while
// unstructured pruning stays at R = 1 (at 80% zeros a random 4-block is nonzero with
// probability 0.59, so R = 4 would store 2.95x the weights).
//
// Choosing kc (the K chunk). Each chunk's panel slice must stay in L1 (32 KiB on Zen 3) while a
// group of output rows sweeps it, but every chunk also costs each row a load and a store of its
// partial sums. A row's entries per chunk should dwarf that: kc is K when the whole panel fits
// in about 16 KiB at the widest tile, else the smallest multiple of 64 that gives rows about
// kEntriesPerChunk entries per chunk, capped so a chunk's slice still fits L1.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "sliver/error.h"
#include "sliver/sparse.h"

namespace sliver {
namespace {

constexpr size_t kAlign = 64;
constexpr int kBlockRows[] = {1, 2, 4, 8};  // SparsityInfo's index -> R (or C)

// Cost per stored weight of an R-row entry, relative to R = 1 (see the header comment).
struct EntryCost {
  int r;
  double f32, q8;
};
constexpr EntryCost kEntryCost[] = {{1, 1.0, 1.0}, {4, 0.62, 0.45}, {8, 0.60, 0.42}};

// Panel bytes per K row at the widest tile: FP32 32 lanes x 4 bytes, INT8 32 lanes x 2 bytes.
constexpr int64_t kPanelRowBytesF32 = 32 * 4, kPanelRowBytesQ8 = 32 * 2;
constexpr int64_t kWholePanelBytes = 16 << 10;  // below this K is not chunked
constexpr int64_t kMaxChunkBytes = 24 << 10;    // a chunk's slice, with room left in L1
constexpr double kEntriesPerChunk = 48;

template <class T>
std::shared_ptr<T> aligned_array(size_t n) {
  const size_t bytes = std::max<size_t>(kAlign, (n * sizeof(T) + 2 * kAlign - 1) / kAlign * kAlign);
  T* p = static_cast<T*>(std::aligned_alloc(kAlign, bytes));
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, bytes);
  return std::shared_ptr<T>(p, [](T* q) { std::free(q); });
}

// A weight as a predicate and value source over (m, k).
struct F32View {
  const float* w;
  int64_t s_out, s_in;
  float at(int64_t m, int64_t k) const { return w[m * s_out + k * s_in]; }
  bool nz(int64_t m, int64_t k) const { return at(m, k) != 0.f; }
};

struct Q8View {
  const uint8_t* w;
  bool is_signed;
  int64_t s_out, s_in;
  const int32_t* zp;
  bool per_channel;
  int32_t raw(int64_t m, int64_t k) const {
    const uint8_t v = w[m * s_out + k * s_in];
    return is_signed ? int32_t{static_cast<int8_t>(v)} : int32_t{v};
  }
  int32_t centred(int64_t m, int64_t k) const { return raw(m, k) - zp[per_channel ? m : 0]; }
  bool nz(int64_t m, int64_t k) const { return centred(m, k) != 0; }
};

template <class View>
SparsityInfo analyze(int64_t out, int64_t in, const View& v) {
  SLIVER_CHECK(out >= 0 && in >= 0, "sparse: negative weight shape ", out, "x", in);
  SparsityInfo s;
  s.out = out;
  s.in = in;
  // Block counts by OR-ing nonzero flags over aligned groups; "filled" counts the valid weights
  // of nonzero blocks, equal to nnz exactly when the pattern is all-or-nothing at that size.
  int64_t filled_r[4] = {}, filled_c[4] = {};
  std::vector<uint8_t> col_used(static_cast<size_t>(in), 0);
  for (int i = 0; i < 4; ++i) {
    const int R = kBlockRows[i];
    for (int64_t m0 = 0; m0 < out; m0 += R) {
      const int64_t rows = std::min<int64_t>(R, out - m0);
      for (int64_t k = 0; k < in; ++k) {
        bool any = false;
        for (int64_t r = 0; r < rows && !any; ++r) any = v.nz(m0 + r, k);
        if (any) {
          ++s.blocks_rx1[i];
          filled_r[i] += rows;
        }
      }
    }
  }
  for (int64_t m = 0; m < out; ++m) {
    int64_t row_nnz = 0;
    for (int64_t k = 0; k < in; ++k) {
      if (v.nz(m, k)) {
        ++row_nnz;
        col_used[static_cast<size_t>(k)] = 1;
      }
    }
    s.nnz += row_nnz;
    s.empty_rows += row_nnz == 0 ? 1 : 0;
    for (int i = 0; i < 4; ++i) {
      const int C = kBlockRows[i];
      for (int64_t k0 = 0; k0 < in; k0 += C) {
        const int64_t cols = std::min<int64_t>(C, in - k0);
        bool any = false;
        for (int64_t c = 0; c < cols && !any; ++c) any = v.nz(m, k0 + c);
        if (any) {
          ++s.blocks_1xc[i];
          filled_c[i] += cols;
        }
      }
    }
  }
  for (uint8_t u : col_used) s.empty_cols += u ? 0 : 1;
  s.density = out * in ? static_cast<double>(s.nnz) / (static_cast<double>(out) * in) : 0.0;
  for (int i = 0; i < 4; ++i) {
    if (filled_r[i] == s.nnz) s.block_rows = kBlockRows[i];
    if (filled_c[i] == s.nnz) s.block_cols = kBlockRows[i];
  }
  return s;
}

int info_index(int r) { return r == 1 ? 0 : r == 2 ? 1 : r == 4 ? 2 : 3; }

int choose_block(const SparsityInfo& s, bool int8, int forced) {
  if (forced) {
    SLIVER_CHECK(forced == 1 || forced == 4 || forced == 8, "sparse: block_rows must be 1, 4 or 8, got ",
                 forced);
    return forced;
  }
  int best = 1;
  double best_cost = 1e300;
  for (const EntryCost& c : kEntryCost) {
    const double cost = static_cast<double>(s.blocks_rx1[info_index(c.r)]) * c.r * (int8 ? c.q8 : c.f32);
    if (cost < best_cost) {
      best_cost = cost;
      best = c.r;
    }
  }
  return best;
}

int64_t choose_kc(const SparsityInfo& s, int R, int64_t row_bytes, int64_t forced) {
  if (forced) {
    SLIVER_CHECK(forced >= 1 && forced <= 65536, "sparse: kc must be in [1, 65536], got ", forced);
    return forced;
  }
  const int64_t in = std::max<int64_t>(s.in, 1);
  if (in * row_bytes <= kWholePanelBytes && in <= 65536) return in;
  // Entries a row block gets per K row: R-blocks per (block row x k).
  const double per_k = static_cast<double>(s.blocks_rx1[info_index(R)]) /
                       std::max<double>(1.0, static_cast<double>((s.out + R - 1) / R) * in);
  const int64_t cap = std::max<int64_t>(64, kMaxChunkBytes / row_bytes / 64 * 64);
  int64_t kc = static_cast<int64_t>(std::ceil(kEntriesPerChunk / std::max(per_k, 1e-6) / 64)) * 64;
  kc = std::clamp<int64_t>(kc, 64, cap);
  return kc >= in ? std::min<int64_t>(in, 65536) : kc;
}

// Walks the entries in storage order: fn(chunk, block, k) for every k of the chunk where some
// row of the block is nonzero; between (chunk, block) groups calls next().
template <class View, class Entry, class Next>
void walk(const View& v, int64_t out, int64_t in, int R, int64_t kc, int64_t chunks, Entry entry,
          Next next) {
  const int64_t nb = (out + R - 1) / R;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t k1 = std::min(in, (c + 1) * kc);
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t rows = std::min<int64_t>(R, out - b * R);
      for (int64_t k = c * kc; k < k1; ++k) {
        bool any = false;
        for (int64_t r = 0; r < rows && !any; ++r) any = v.nz(b * R + r, k);
        if (any) entry(b, k - c * kc, k);
      }
      next();
    }
  }
}

}  // namespace

int64_t SparseF32Weights::bytes() const {
  return static_cast<int64_t>(ptr.size() * 4 + kidx.size() * 2) + entries * block * 4;
}

int64_t SparseQ8Weights::bytes() const {
  return static_cast<int64_t>(ptr.size() * 4 + kidx.size() * 2 + zero_point.size() * 4) +
         pairs * block * 4;
}

SparsityInfo analyze_sparsity_f32(int64_t out, int64_t in, const float* w, int64_t s_out,
                                  int64_t s_in) {
  SLIVER_CHECK(out * in == 0 || w != nullptr, "sparse: null weights");
  return analyze(out, in, F32View{w, s_out, s_in});
}

SparsityInfo analyze_sparsity_q8(int64_t out, int64_t in, const void* w, DType w_type,
                                 int64_t s_out, int64_t s_in, const int32_t* zero_point,
                                 bool per_channel) {
  SLIVER_CHECK(w_type == DType::u8 || w_type == DType::i8, "sparse: weights must be u8 or i8, got ",
               dtype_name(w_type));
  SLIVER_CHECK(out * in == 0 || w != nullptr, "sparse: null weights");
  SLIVER_CHECK(zero_point != nullptr, "sparse: null zero point");
  return analyze(out, in,
                 Q8View{static_cast<const uint8_t*>(w), w_type == DType::i8, s_out, s_in,
                        zero_point, per_channel});
}

std::shared_ptr<SparseF32Weights> pack_sparse_f32(int64_t out, int64_t in, const float* w,
                                                  int64_t s_out, int64_t s_in,
                                                  const SparsePackOptions& opt) {
  const F32View v{w, s_out, s_in};
  auto pk = std::make_shared<SparseF32Weights>();
  pk->info = analyze_sparsity_f32(out, in, w, s_out, s_in);
  pk->out = out;
  pk->in = in;
  pk->nnz = pk->info.nnz;
  const int R = pk->block = choose_block(pk->info, false, opt.block_rows);
  pk->kc = choose_kc(pk->info, R, kPanelRowBytesF32, opt.kc);
  pk->entries = pk->info.blocks_rx1[info_index(R)];
  const int64_t chunks = pk->chunks();
  if (pk->entries > INT32_MAX) fail("sparse: too many nonzeros (", pk->entries, ")");
  pk->ptr.reserve(static_cast<size_t>(chunks * pk->blocks() + 1));
  pk->ptr.push_back(0);
  pk->kidx.reserve(static_cast<size_t>(pk->entries));
  pk->w = aligned_array<float>(static_cast<size_t>(pk->entries * R));
  float* dst = pk->w.get();
  int64_t e = 0;
  walk(
      v, out, in, R, pk->kc, chunks,
      [&](int64_t b, int64_t kl, int64_t k) {
        pk->kidx.push_back(static_cast<uint16_t>(kl));
        for (int r = 0; r < R; ++r) dst[e * R + r] = b * R + r < out ? v.at(b * R + r, k) : 0.f;
        ++e;
      },
      [&] { pk->ptr.push_back(static_cast<int32_t>(e)); });
  if (e != pk->entries) fail("sparse: internal entry count mismatch");
  return pk;
}

std::shared_ptr<SparseQ8Weights> pack_sparse_q8(int64_t out, int64_t in, const void* w,
                                                DType w_type, int64_t s_out, int64_t s_in,
                                                const int32_t* zero_point, bool per_channel,
                                                const SparsePackOptions& opt) {
  auto pk = std::make_shared<SparseQ8Weights>();
  pk->info = analyze_sparsity_q8(out, in, w, w_type, s_out, s_in, zero_point, per_channel);
  const int32_t lo = w_type == DType::u8 ? 0 : -128, hi = lo + 255;
  for (int64_t m = 0; m < (per_channel ? out : 1); ++m)
    SLIVER_CHECK(zero_point[m] >= lo && zero_point[m] <= hi, "sparse: weight zero point ",
                 zero_point[m], " out of range for ", dtype_name(w_type));
  const Q8View v{static_cast<const uint8_t*>(w), w_type == DType::i8, s_out, s_in, zero_point,
                 per_channel};
  pk->out = out;
  pk->in = in;
  pk->w_type = w_type;
  pk->nnz = pk->info.nnz;
  pk->zero_point.resize(static_cast<size_t>(out));
  for (int64_t m = 0; m < out; ++m) pk->zero_point[m] = zero_point[per_channel ? m : 0];
  const int R = pk->block = choose_block(pk->info, true, opt.block_rows);
  pk->kc = choose_kc(pk->info, R, kPanelRowBytesQ8, opt.kc);
  const int64_t chunks = pk->chunks();
  // Pairs per (chunk, block) group: ceil(entries / 2); count them in a first walk.
  int64_t pairs = 0, run = 0;
  walk(
      v, out, in, R, pk->kc, chunks, [&](int64_t, int64_t, int64_t) { ++run; },
      [&] {
        pairs += (run + 1) / 2;
        run = 0;
      });
  if (pairs > INT32_MAX) fail("sparse: too many nonzeros (", pairs, ")");
  pk->pairs = pairs;
  pk->ptr.reserve(static_cast<size_t>(chunks * pk->blocks() + 1));
  pk->ptr.push_back(0);
  pk->kidx.reserve(static_cast<size_t>(2 * pairs));
  pk->w = aligned_array<int16_t>(static_cast<size_t>(pairs * 2 * R));
  int16_t* dst = pk->w.get();
  int64_t p = 0;
  bool open = false;  // the current pair has its first input only
  auto weight = [&](int64_t b, int r, int64_t k) -> int16_t {
    return b * R + r < out ? static_cast<int16_t>(v.centred(b * R + r, k)) : int16_t{0};
  };
  walk(
      v, out, in, R, pk->kc, chunks,
      [&](int64_t b, int64_t kl, int64_t k) {
        pk->kidx.push_back(static_cast<uint16_t>(kl));
        for (int r = 0; r < R; ++r) dst[(p * R + r) * 2 + (open ? 1 : 0)] = weight(b, r, k);
        if (open) ++p;
        open = !open;
      },
      [&] {
        if (open) {  // odd count: pair the last input with itself, second weight 0
          pk->kidx.push_back(pk->kidx.back());
          for (int r = 0; r < R; ++r) dst[(p * R + r) * 2 + 1] = 0;
          ++p;
          open = false;
        }
        pk->ptr.push_back(static_cast<int32_t>(p));
      });
  if (p != pairs) fail("sparse: internal pair count mismatch");
  return pk;
}

}  // namespace sliver
