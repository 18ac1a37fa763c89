// Pruned weights -> sparse formats (sparse.h): detection of the zero structure, the choice of
// block height R and K chunk, and the packing itself. Runs once per weight at session creation.
//
// What "zero" means: 0.f for FP32 (so -0.f is zero too); for INT8 the weight's zero point (of its
// output channel), because that is the value whose dequantized weight is 0.
//
// Choosing R (and, for INT8, the pairing kr). An entry of an Rx1 block costs about the same as
// R entries of R = 1 in multiply-adds but shares its activation loads (and, for INT8, the
// interleaving shuffles) between R rows, so its cost per stored weight is lower. A packing
// costs (stored weights) x (cost per stored weight); the padding weights of partly filled blocks
// are paid for. The cost tables below are relative to R = 1, measured with bench_sparse.py-style
// runs of each layout on exactly blocked weights (Zen 3, densities 0.1 / 0.2, both orientations;
// the spread was +-0.15): FP32 R = 4: 0.60-0.84, R = 8: 0.68-0.93; INT8 R = 4: 0.69-0.88,
// R = 8: 0.77-1.44, aligned pairs: 0.78-0.84. The cheapest layout wins, so exact 4x1 / 8x1
// patterns take blocks, 1x2 / 1x4 INT8 patterns take aligned pairs, while unstructured pruning
// stays at R = 1 (at 80% zeros a random 4-block is nonzero with probability 0.59, so R = 4
// would store 2.95x the weights).
//
// Choosing kc (the K chunk). A chunk's panel slice should stay in L1 while the rows sweep it,
// but every chunk also costs each row block a load and a store of its partial sums, a loop exit
// (a mispredicted branch) and a pass over its pointers. Measured on Zen 3 (bench_sparse.py
// shapes, kc from 128 to K), the best chunks give each row block about kWeightsPerChunk stored
// weights -- far more than "the slice fits L1" alone would allow, because a row reads only its
// own nonzeros' panel rows: FP32 about 80 (kc ~ 256 at 20% density, ~800 at 10%), INT8 about
// 200 (its panel rows are half as wide and a pair is cheaper per weight). K is not chunked when
// the whole panel fits 16 KiB, or when the caller says the product is a GEMV (one column: the
// activations are a vector in L1 anyway).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <new>
#include <utility>
#include <vector>

#include "sliver/cpu.h"
#include "sliver/error.h"
#include "sliver/sparse.h"

namespace sliver {
namespace {

constexpr size_t kAlign = 64;
constexpr int kBlockRows[] = {1, 2, 4, 8};  // SparsityInfo's index -> R (or C)

// Cost per stored weight of an entry of R rows (INT8: pairing kr), relative to R = 1, kr = 1
// (see the header comment). INT8 kr = 2 stores aligned input pairs whose panel rows come
// pre-interleaved: one load per pair instead of two loads and an unpack.
struct EntryCost {
  int r, kr;
  double cost;
};
constexpr EntryCost kF32EntryCost[] = {{1, 1, 1.0}, {4, 1, 0.70}, {8, 1, 0.80}};
// The AVX-512 kernels run R = 8 on 32 lanes (16 sums) against R = 4's 8: 1.0-1.2x faster than
// R = 4 on 8x1 weights (bench_sparse.py shapes, 50-90% zeros, median 1.1; Xeon, 1 thread).
constexpr EntryCost kF32EntryCostZmm[] = {{1, 1, 1.0}, {4, 1, 0.70}, {8, 1, 0.64}};
// kr = 4 (quads, q8_spmm_quad_avx2.h) is kr = 1 on a uint8 panel: 1.15-1.3x faster on
// bench_sparse.py's unstructured shapes at 80-90% zeros (Zen 3), but slower than kr = 2 on 1x4
// patterns at 50-80% zeros (0.72-0.93x), which its 0.85 against kr = 2's 0.80 keeps there.
constexpr EntryCost kQ8EntryCost[] = {{1, 1, 1.0},  {1, 2, 0.80}, {1, 4, 0.85},
                                      {4, 1, 0.75}, {8, 1, 0.95}, {1, kQ8AlignedQuads, 1.0}};
// Where VNNI is usable the quads run vpdpbusd (q8_spmm_avx512vnni.cc), the other layouts stay
// AVX2. Time per stored weight against kr = 1, measured here (Emerald Rapids Xeon, conv3x3 /
// conv1x1 / bert_ffn1 of bench_sparse.py at 10% and 20% nonzeros, unstructured and 4x1): kr = 2
// 0.59-0.68, q4 0.53-0.70 (0.65: its half pairs are not in stored_weights), 4x1 blocks
// 0.68-0.77, 8x1 0.70-0.93, c4 0.17-0.22 (1x4 patterns 0.22-0.37: fewer groups a row). So c4
// takes every 1x4 pattern, 4x1 ones from ~15% nonzeros and unstructured ones from ~10% up, where
// it measured 1.0-2x the q4 speed; below, q4 and c4 measured within 5% of each other. 4x1 blocks
// at 0.62 (not 0.72) take exact 4x1 patterns at 10% nonzeros from q4: 1.04-1.17x q4's speed on
// bert_ffn1 and mlp, 0.96-1.03x on the convolutions.
constexpr EntryCost kQ8EntryCostVnni[] = {{1, 1, 1.0},  {1, 2, 0.65}, {1, 4, 0.65},
                                          {4, 1, 0.62}, {8, 1, 0.85}, {1, kQ8AlignedQuads, 0.2}};

// Panel bytes per K row at the widest tile: FP32 32 lanes x 4 bytes, INT8 32 lanes x 2 bytes
// (int16), quads 32 x 1.
constexpr int64_t kPanelRowBytesF32 = 32 * 4, kPanelRowBytesQ8 = 32 * 2, kPanelRowBytesQ4 = 32;
constexpr int64_t kWholePanelBytes = 16 << 10;  // below this K is not chunked
// Quads: a kc sweep (64 to 512, SparseQ8Problem) found this choice within 5% of the best.
constexpr double kWeightsPerChunkQ8 = 200, kWeightsPerChunkQ4 = 200;
// FP32 chunks aim at this many stored entries per row block (of any height), which keeps a
// chunk's panel slice near L1: a kc sweep (SparseF32Problem, Zen 3; 64 to 1024) put the best kc
// at 512-1024 for 5% nonzeros, 256-512 at 10%, 256 at 20%, 192-256 at 30% and 128-192 at 50%,
// for unstructured, 1x4 and 4x1 / 8x1 weights alike (hence at least 192). Counting weights (80
// a row block, before) chose 448 at 20% (10-20% slower) and 128 for 4x1 blocks at 20% (12-15%
// slower).
constexpr double kEntriesPerChunkF32 = 50;
constexpr int64_t kMinChunkF32 = 192;
constexpr int64_t kMinChunk = 128;
constexpr double kMinQuadRowNonzeros = 16;  // per output row, on average
constexpr int64_t kMaxStep = 255;  // INT8 input steps are bytes

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

// A view whose "inputs" are aligned groups of G inputs: (m, j) is nonzero when one of
// (m, G j) ... (m, G j + G - 1) is.
template <class View, int G>
struct GroupView {
  const View& v;
  int64_t in;
  bool nz(int64_t m, int64_t j) const {
    for (int64_t k = G * j; k < std::min(in, G * j + G); ++k)
      if (v.nz(m, k)) return true;
    return false;
  }
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
  s.density = out * in != 0 ? static_cast<double>(s.nnz) / (static_cast<double>(out) * in) : 0.0;
  for (int i = 0; i < 4; ++i) {
    if (filled_r[i] == s.nnz) s.block_rows = kBlockRows[i];
    if (filled_c[i] == s.nnz) s.block_cols = kBlockRows[i];
  }
  return s;
}

int info_index(int r) { return r == 1 ? 0 : r == 2 ? 1 : r == 4 ? 2 : 3; }

// Weights an (R, kr) packing stores: R per nonzero Rx1 block, 2 per nonzero aligned pair, 4
// per nonzero aligned group of 4.
double stored_weights(const SparsityInfo& s, int r, int kr) {
  if (kr == 2) return 2.0 * static_cast<double>(s.blocks_1xc[1]);
  if (kr == kQ8AlignedQuads) return 4.0 * static_cast<double>(s.blocks_1xc[2]);
  return static_cast<double>(s.blocks_rx1[info_index(r)]) * r;
}

// The cheapest (R, kr) of `table`, among those the options allow; the quads (kr = 4, 8) only
// where `quads` has their kr bit, or forced.
template <size_t N>
EntryCost choose_layout(const SparsityInfo& s, const EntryCost (&table)[N],
                        const SparsePackOptions& opt, int quads = 0) {
  SLIVER_CHECK(opt.block_rows == 0 || opt.block_rows == 1 || opt.block_rows == 4 ||
                   opt.block_rows == 8,
               "sparse: block_rows must be 1, 4 or 8, got ", opt.block_rows);
  SLIVER_CHECK(opt.kr == 0 || opt.kr == 1 || opt.kr == 2 || opt.kr == 4 ||
                   opt.kr == kQ8AlignedQuads,
               "sparse: kr must be 1, 2, 4 or 8, got ", opt.kr);
  EntryCost best{0, 0, 0};
  double best_cost = 1e300;
  for (const EntryCost& c : table) {
    if ((opt.block_rows && c.r != opt.block_rows) || (opt.kr && c.kr != opt.kr)) continue;
    if ((c.kr & (4 | kQ8AlignedQuads)) && !(quads & c.kr) && opt.kr != c.kr) continue;
    const double cost = stored_weights(s, c.r, c.kr) * c.cost;
    if (cost < best_cost) {
      best_cost = cost;
      best = c;
    }
  }
  if (best.r == 0) fail("sparse: no layout with block_rows=", opt.block_rows, " kr=", opt.kr);
  return best;
}

// target: stored weights (per_entry: entries) a row block gets per chunk; min_kc: the least kc.
// multiple: what a chunk's kc must be a multiple of (kr = 2: 2, kr = 8: 4).
int64_t choose_kc(const SparsityInfo& s, int R, int64_t row_bytes, double target,
                  const SparsePackOptions& opt, int64_t multiple, bool per_entry = false,
                  int64_t min_kc = kMinChunk) {
  const int64_t in = std::max<int64_t>(s.in, 1);
  if (opt.kc) {
    SLIVER_CHECK(opt.kc >= 1 && opt.kc <= 65536, "sparse: kc must be in [1, 65536], got ", opt.kc);
    return opt.kc < in ? (opt.kc + multiple - 1) / multiple * multiple : opt.kc;
  }
  // A single column (GEMV) reads its activations straight from L1: chunks would only cost.
  if ((opt.cols == 1 || in * row_bytes <= kWholePanelBytes) && in <= 65536) return in;
  // Stored weights (entries) a row block gets per K row.
  const double per_k = static_cast<double>(s.blocks_rx1[info_index(R)]) * (per_entry ? 1 : R) /
                       std::max<double>(1.0, static_cast<double>((s.out + R - 1) / R) * in);
  int64_t kc = static_cast<int64_t>(std::ceil(target / std::max(per_k, 1e-6) / 64)) * 64;
  kc = std::max(kc, min_kc);
  return kc >= in ? std::min<int64_t>(in, 65536) : kc;
}

// Whether every w - zero_point fits int8 (the weights can be stored in 8 bits).
bool centred_fit_int8(const Q8View& v, int64_t out, int64_t in) {
  for (int64_t m = 0; m < out; ++m)
    for (int64_t k = 0; k < in; ++k) {
      const int32_t c = v.centred(m, k);
      if (c < -128 || c > 127) return false;
    }
  return true;
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
  return static_cast<int64_t>(count.size() * 2 + start64.size() * 4 + kidx.size() +
                              wsum.size() * 4) +
         pairs * block * 2 * (wide ? 2 : 1);
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
  SLIVER_CHECK(opt.kr <= 1, "sparse: kr applies to INT8 weights only");
  const int R = pk->block = isa_usable("avx512")
                                ? choose_layout(pk->info, kF32EntryCostZmm, opt).r
                                : choose_layout(pk->info, kF32EntryCost, opt).r;
  pk->kc = choose_kc(pk->info, R, kPanelRowBytesF32, kEntriesPerChunkF32, opt, 1, true,
                     kMinChunkF32);
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
  const bool fit_int8 = centred_fit_int8(v, out, in);
  // Quads need vpmaddubsw's signed operand (w - zero_point within int8), and pay for their
  // padding, half pairs and row sums only on rows with a few quads.
  SLIVER_CHECK((opt.kr != 4 && opt.kr != kQ8AlignedQuads) || fit_int8, "sparse: kr=", opt.kr,
               " needs weights whose w - zero_point fits int8 (symmetric weights)");
  const bool quads_ok =
      fit_int8 &&
      static_cast<double>(pk->info.nnz) >= kMinQuadRowNonzeros * static_cast<double>(out);
  const bool vnni = isa_usable("avx512vnni");
  const int quads = !quads_ok ? 0 : vnni ? 4 | kQ8AlignedQuads : 4;
  const EntryCost layout = vnni ? choose_layout(pk->info, kQ8EntryCostVnni, opt, quads)
                                : choose_layout(pk->info, kQ8EntryCost, opt, quads);
  const int R = pk->block = layout.r;
  const int kr = pk->kr = layout.kr;
  const bool byte_panel = kr == 4 || kr == kQ8AlignedQuads;
  pk->kc = byte_panel ? choose_kc(pk->info, R, kPanelRowBytesQ4, kWeightsPerChunkQ4, opt,
                                  kr == 4 ? 1 : 4)
                      : choose_kc(pk->info, R, kPanelRowBytesQ8, kWeightsPerChunkQ8, opt,
                                  kr == 2 ? 2 : 1);
  const int64_t chunks = pk->chunks();
  // int8 weights for unblocked rows; blocks keep int16: their R weight pairs per input pair
  // would cost a decode per row in the kernels' busiest port (q8_spmm_avx2.cc: 18% slower).
  pk->wide = R > 1 || !fit_int8;
  auto weight = [&](int64_t b, int r, int64_t k) -> int16_t {
    return b * R + r < out && k >= 0 && k < in ? static_cast<int16_t>(v.centred(b * R + r, k))
                                              : int16_t{0};
  };
  pk->count.reserve(static_cast<size_t>(pk->runs()));
  std::vector<int16_t> w16;
  int64_t p = 0;
  // One pair: its input steps and the block's R weight pairs (k < 0: a filler's zero weights).
  auto emit = [&](int64_t b, std::initializer_list<int64_t> steps, int64_t k1, int64_t k2) {
    for (int64_t d : steps) pk->kidx.push_back(static_cast<uint8_t>(d));
    for (int r = 0; r < R; ++r) {
      w16.push_back(weight(b, r, k1));
      w16.push_back(weight(b, r, k2));
    }
    ++p;
  };
  // A (chunk, block) run's nonzero inputs (chunk-local, increasing) as pairs of byte steps.
  std::vector<std::pair<int64_t, int64_t>> run;  // (k within the chunk, k)
  int64_t run_block = 0, run_start = 0;
  // Inputs a step counts: kr = 2 and 8 step in aligned pairs / groups.
  const int64_t unit = kr == 2 ? 2 : kr == kQ8AlignedQuads ? 4 : 1;
  auto flush = [&] {
    int64_t base = 0;  // kr = 1: the previous pair's k2; kr = 2, 8: its k1
    const int64_t reach = unit * kMaxStep;
    for (size_t i = 0; i < run.size();) {
      const auto [kl1, k1] = run[i];
      if (kl1 - base > reach) {  // a filler, so that every step fits a byte
        base += reach;
        if (kr == 2) {
          emit(run_block, {kMaxStep}, -1, -1);
        } else if (kr == kQ8AlignedQuads) {
          emit(run_block, {kMaxStep}, -1, -1);
          emit(run_block, {}, -1, -1);
        } else {
          emit(run_block, {kMaxStep, kMaxStep}, -1, -1);
        }
        continue;
      }
      if (kr == kQ8AlignedQuads) {  // aligned group k1 .. k1 + 3, k1 % 4 == 0: two pairs
        emit(run_block, {(kl1 - base) / 4}, k1, k1 + 1);
        emit(run_block, {}, k1 + 2, k1 + 3);
        base = kl1;
        ++i;
        continue;
      }
      if (kr == 2) {  // aligned pair (k1, k1 + 1), k1 even
        emit(run_block, {(kl1 - base) / 2}, k1, k1 + 1);
        base = kl1;
        ++i;
        continue;
      }
      // kr = 1: the next input as the partner when its step from base fits, else itself with
      // weight 0 (an odd last input, or one followed by a long gap). kr = 4 also takes it alone
      // when the pair could saturate vpmaddubsw.
      if (i + 1 < run.size() && run[i + 1].first - base <= kMaxStep &&
          (kr != 4 || q8_pair_fast_safe(weight(run_block, 0, k1),
                                        weight(run_block, 0, run[i + 1].second)))) {
        const auto [kl2, k2] = run[i + 1];
        emit(run_block, {kl1 - base, kl2 - base}, k1, k2);
        base = kl2;
        i += 2;
      } else {
        emit(run_block, {kl1 - base, kl1 - base}, k1, -1);
        base = kl1;
        ++i;
      }
    }
    if (kr == 4 && (p - run_start) % 2) emit(run_block, {0, 0}, -1, -1);  // whole quads
    run.clear();
    if (pk->count.size() % 64 == 0) pk->start64.push_back(static_cast<int32_t>(run_start));
    if (p - run_start > UINT16_MAX) fail("sparse: too many pairs in one run (", p - run_start, ")");
    pk->count.push_back(static_cast<uint16_t>(p - run_start));
    run_start = p;
  };
  auto walk_groups = [&](const auto& view) {
    walk(
        view, out, (in + unit - 1) / unit, R, (pk->kc + unit - 1) / unit, chunks,
        [&](int64_t b, int64_t jl, int64_t j) {
          run.emplace_back(unit * jl, unit * j);
          run_block = b;
        },
        flush);
  };
  if (kr == 2) {
    // Aligned pairs (k, k + 1): an entry wherever either is nonzero (chunks start at even k).
    walk_groups(GroupView<Q8View, 2>{v, in});
  } else if (kr == kQ8AlignedQuads) {
    walk_groups(GroupView<Q8View, 4>{v, in});  // likewise in groups of 4
  } else {
    walk(
        v, out, in, R, pk->kc, chunks,
        [&](int64_t b, int64_t kl, int64_t k) {
          run.emplace_back(kl, k);
          run_block = b;
        },
        flush);
  }
  if (p > INT32_MAX) fail("sparse: too many nonzeros (", p, ")");
  pk->pairs = p;
  if (byte_panel) {
    pk->wsum.resize(static_cast<size_t>(out));
    for (int64_t m = 0; m < out; ++m) {
      int64_t sum = 0;
      for (int64_t k = 0; k < in; ++k) sum += v.centred(m, k);
      pk->wsum[static_cast<size_t>(m)] = static_cast<int32_t>(static_cast<uint32_t>(sum));
    }
  }
  if (pk->count.size() % 64 == 0) pk->start64.push_back(static_cast<int32_t>(p));  // runs()
  if (pk->wide) {
    pk->w = aligned_array<uint8_t>(w16.size() * sizeof(int16_t));
    std::memcpy(pk->w.get(), w16.data(), w16.size() * sizeof(int16_t));
  } else {
    pk->w = aligned_array<uint8_t>(w16.size());
    int8_t* d = reinterpret_cast<int8_t*>(pk->w.get());
    for (size_t i = 0; i < w16.size(); ++i) d[i] = static_cast<int8_t>(w16[i]);
  }
  return pk;
}

}  // namespace sliver
