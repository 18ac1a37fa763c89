// Sparse-weight products: pruned constant weights as speed, FP32 and exact INT8.
//
// Why a second engine. A pruned layer's weights are mostly zeros (50-95% unstructured, or zeros
// in whole Rx1 blocks). A dense GEMM multiplies by those zeros at full price; here the weights
// are packed once as their nonzeros only, grouped per output channel, and every nonzero costs one
// multiply-add against a short, contiguous run of activations:
//
//     Y[m, n0:n0+NT] += w[m, k] * X[k, n0:n0+NT]          for each stored nonzero w[m, k]
//
// NT (the tile width, 8/16/32 lanes; 64 for FP32 window grids) runs along the dimension the weights do not touch: pixels
// for a convolution ("weights on the left", Y = W X), the rows of X for a Gemm/MatMul with
// constant B ("weights on the right", Y = X W, run as Y^T = W^T X^T). Per tile the activations
// are first copied into a small "panel" (row k of the tile at panel + k * NT, zero padded, int16
// and zero-point-centred for INT8): the nonzeros then index it with a 16-bit k (INT8: 8-bit
// steps), loads stay aligned and no stride of X can alias in L1. K is cut into chunks (kc) so that a chunk's panel
// slice stays hot while every output row reads its nonzeros from it (sparse_pack.cc says how kc
// is chosen).
//
// Convolutions without im2col. The im2col matrix of a KxK convolution holds every input value
// K times; writing it cost more than the products themselves at 80-90% zeros (the panel row of
// every tap is written whatever the few nonzeros read). The FP32 conv instead lays its input
// out once as zero-padded planes split by stride phase, in which every window tap (c, i, j) is a
// fixed offset from the output pixel's position: the kernels read weight column k's activations
// at x + koff[k] + q directly (f32_spmm_left_grid). Output pixels walk rows of the plane's
// width; the few columns past the output's width are computed and dropped.
//
// Blocks. When R consecutive output channels share their nonzero inputs (Rx1 blocks, R = 4 or 8,
// what structured pruning produces), one entry holds R weights and each activation load feeds R
// multiply-adds instead of one; packing picks R by a measured cost per entry, so a pattern that is
// only partly blocked still gets R where it pays (the padding weights are stored zeros). A 1xC
// pattern (C consecutive inputs) needs nothing special in FP32 (its entries are adjacent); INT8
// stores it as aligned input pairs whose activations come pre-interleaved (kr = 2 below).
//
// INT8. With x' = x - x_zero_point and w' = w - w_zero_point[m], both in [-255, 255] (int16),
// a product needs 17 bits (|x' w'| <= 65025), so the kernels pair two nonzeros of a row and use
// vpmaddwd (s16 x s16 -> s32 pair sums, |sum| <= 130050: never saturates). Sums are exact
// int32 (mod 2^32, like the reference), no correction terms are needed since both operands are
// centred, and a weight equal to its zero point is the pruned "zero" (skipped). The requantizing
// epilogue follows requant.h (round half to even, saturation, fused Relu/Clip via [qmin, qmax]).
//
// Results do not depend on the thread count: work is split over output rows and tiles only, and
// every row is summed in the same order whatever the split.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sliver/gemm.h"
#include "sliver/qgemm.h"
#include "sliver/tensor.h"

namespace sliver {

class ThreadPool;

// ---------------------------------------------------------------------------------------------
// Detection.

/// Zero structure of a weight viewed as [out, in] (element (m, k) at w[m * s_out + k * s_in]).
struct SparsityInfo {
  int64_t out = 0, in = 0;
  int64_t nnz = 0;            // weights that are not the "zero" (0.f, or the zero point)
  double density = 0;         // nnz / (out * in)
  int64_t empty_rows = 0;     // output channels with no nonzero
  int64_t empty_cols = 0;     // inputs no output reads
  // Nonzero aligned blocks for R output rows x 1 input (index: 0 -> R=1, 1 -> 2, 2 -> 4, 3 -> 8)
  // and for 1 row x C consecutive inputs (same indexing): blocks_rx1[i] * R >= nnz, equal when
  // the pattern is exactly Rx1-blocked.
  int64_t blocks_rx1[4] = {0, 0, 0, 0};
  int64_t blocks_1xc[4] = {0, 0, 0, 0};
  int block_rows = 1;  // largest R in {1, 2, 4, 8} whose blocks are all-or-nothing
  int block_cols = 1;  // largest C in {1, 2, 4, 8} likewise
};

SparsityInfo analyze_sparsity_f32(int64_t out, int64_t in, const float* w, int64_t s_out,
                                  int64_t s_in);
/// w is u8 or i8; zero_point has 1 value or `out` values (per output channel).
SparsityInfo analyze_sparsity_q8(int64_t out, int64_t in, const void* w, DType w_type,
                                 int64_t s_out, int64_t s_in, const int32_t* zero_point,
                                 bool per_channel);

// ---------------------------------------------------------------------------------------------
// Packed weights.

struct SparsePackOptions {
  int block_rows = 0;  // 0: choose by cost (from 1, 4, 8); else force this R (1, 4 or 8)
  int kr = 0;  // INT8 pairing: 0 choose by cost; 1, 2 or 4 force (2, 4 need R = 1; 4 int8 w')
  int64_t kc = 0;      // 0: choose from the density; else this K chunk (<= 65536)
  int64_t cols = 0;    // expected activation columns if known (1: a GEMV, K is not chunked)
};

/// Nonzero entries of a weight, grouped by (K chunk, block of R output rows). Entries of chunk c
/// and row block b are [ptr[c * blocks() + b], ptr[c * blocks() + b + 1]) -- chunk-major, so the
/// entries a kernel call walks (one chunk, consecutive blocks) are contiguous. Entry e: input
/// k = c * kc + kidx[e] and the R weights of its block rows at w + e * R (rows past `out` in the
/// last block hold 0).
struct SparseF32Weights {
  int64_t out = 0, in = 0;
  int block = 1;  // R
  int64_t kc = 0;
  int64_t nnz = 0, entries = 0;
  SparsityInfo info;
  std::vector<int32_t> ptr;
  std::vector<uint16_t> kidx;
  std::shared_ptr<float> w;  // 64-byte aligned, entries * R (+ slack)

  int64_t blocks() const { return (out + block - 1) / block; }
  int64_t chunks() const { return in == 0 ? 1 : (in + kc - 1) / kc; }  // >= 1
  int64_t bytes() const;
};

/// INT8 variant: entries come in pairs of inputs (k1, k2), each with R weight pairs
/// (w'1, w'2) = w - zero_point, rows in block order, at 2 R e (pair e). Two pairings (kr):
///  kr = 1: a row block's nonzero inputs taken two at a time in order (an odd last one is paired
///          with itself and weight 0); the kernels interleave the two panel rows at run time.
///  kr = 2: aligned pairs (k, k + 1), k even, wherever either is nonzero; the panel is stored
///          pre-interleaved, so a pair is one load. What 1x2 / 1x4 (consecutive input) pruning
///          wants; unstructured weights would store almost twice the pairs.
///  kr = 4: kr = 1 pairs (same steps and weights) that the quad kernels take two at a time
///          from a uint8 panel with vpmaddubsw: every run holds an even number of pairs (a zero
///          pair pads it), every pair is fast-safe (qgemm.h; an unsafe pair is stored as two
///          half pairs) and the weights are int8 (R = 1, w - zero_point within int8). The
///          kernels sum u * w' for the raw activation bytes u (s8 with the sign bit flipped),
///          so wsum[m] (the row's sum of w') lets the driver re-centre: subtract
///          u_zero_point * wsum[m].
///  kr = 8 (kQ8AlignedQuads, "c4"): aligned groups (k, k + 1, k + 2, k + 3), k % 4 == 0,
///          wherever one of them is nonzero, stored as two pairs with one input step (in groups)
///          per group; int8 weights, R = 1, the raw-byte sums and wsum of kr = 4. The panel is
///          stored as the groups' bytes per lane (below), so a group is one load and one
///          vpdpbusd per 16 lanes (q8_spmm_avx512vnni.cc); packed only where VNNI is usable.
/// Bytes per nonzero matter as much as speed here (a pruned model should also be a small one):
/// unblocked weights (R = 1) are stored as int8 when every w - zero_point fits (symmetric
/// weights: always), else as int16 (`wide`; blocks too, see sparse_pack.cc); the inputs as
/// 8-bit steps. Within a (chunk, block) run the inputs
/// increase; `base` starts at 0 (the chunk's first input) and pair e's inputs are
///  kr = 1: k1 = base + kidx[2e], k2 = base + kidx[2e + 1], then base = k2;
///  kr = 2: k1 = base + 2 kidx[e], k2 = k1 + 1, then base = k1;
///  kr = 8: pairs e, e + 1 (e even) are k1 = base + 4 kidx[e / 2] and k1 + 1, k1 + 2, k1 + 3,
///          then base = k1.
/// A gap longer than a byte takes "filler" pairs (weights 0) at most 255 (kr = 2: 510) inputs
/// apart (kr = 8: 1020). The kernels walk the steps with one add per pair, so indices cost no
/// more than absolute 16-bit ones; a 90%-pruned layer stores about 0.2 bytes per dense weight.
/// The kr code of aligned quads: the next free bit after 1, 2, 4 (kr is a code, not a count).
constexpr int kQ8AlignedQuads = 8;

struct SparseQ8Weights {
  int64_t out = 0, in = 0;
  int block = 1;
  int kr = 1;
  int64_t kc = 0;  // even when kr = 2, a multiple of 4 when kr = 8 (unless one chunk covers K)
  int64_t nnz = 0, pairs = 0;  // pairs: fillers included
  DType w_type = DType::i8;
  bool wide = false;  // weights as int16 (R > 1, or some w - zero_point outside int8)
  SparsityInfo info;
  // Pairs of each (chunk, block) run, chunk-major like SparseF32Weights::ptr but as counts (2
  // bytes a row instead of 4: small layers are mostly this), and the first pair of every 64th
  // run for random access.
  std::vector<uint16_t> count;
  std::vector<int32_t> start64;
  std::vector<uint8_t> kidx;   // input steps: 2 per pair (kr = 1, 4), 1 (kr = 2), 1/2 (kr = 8)
  std::shared_ptr<uint8_t> w;  // 64-byte aligned, pairs * 2R int8 (int16 if wide) (+ slack)
  std::vector<int32_t> wsum;   // kr = 4, 8: per output row, the sum of its w - zero_point

  int64_t blocks() const { return (out + block - 1) / block; }
  int64_t chunks() const { return in == 0 ? 1 : (in + kc - 1) / kc; }  // >= 1
  int64_t runs() const { return chunks() * blocks(); }
  /// Index of run i's first pair (i = chunk * blocks() + block; i = runs(): pairs).
  int64_t first_pair(int64_t i) const {
    int64_t e = start64[static_cast<size_t>(i / 64)];
    for (int64_t j = i / 64 * 64; j < i; ++j) e += count[static_cast<size_t>(j)];
    return e;
  }
  int64_t bytes() const;
};

/// Packs W viewed as [out, in] (element (m, k) at w[m * s_out + k * s_in]): a Conv weight
/// [M, C*kh*kw] is (s_out = K, s_in = 1); a MatMul B [K, N] is out = N, in = K, (s_out = 1,
/// s_in = N).
std::shared_ptr<SparseF32Weights> pack_sparse_f32(int64_t out, int64_t in, const float* w,
                                                  int64_t s_out, int64_t s_in,
                                                  const SparsePackOptions& opt = {});
std::shared_ptr<SparseQ8Weights> pack_sparse_q8(int64_t out, int64_t in, const void* w,
                                                DType w_type, int64_t s_out, int64_t s_in,
                                                const int32_t* zero_point, bool per_channel,
                                                const SparsePackOptions& opt = {});

// ---------------------------------------------------------------------------------------------
// Products.

struct SpmmOptions {
  bool force_scalar = false;  // portable kernels even when AVX2 is usable
  int tile = 0;               // 0: choose; else NT (1, 8, 16, 32 or 64) for every tile (tests)
};

/// Weights on the left (Conv NCHW): Y[out, N] = epilogue(W[out, in] X[in, N]); X element (k, n)
/// at x[k * ldx + n], Y element (m, n) at y[m * ldy + n]. ep.bias (if any) is per output channel
/// and ep.bias_per_row must be true; the residual is indexed like Y.
void f32_spmm_left(const SparseF32Weights& w, int64_t N, const float* x, int64_t ldx, float* y,
                   int64_t ldy, const Epilogue& ep, ThreadPool* pool,
                   const SpmmOptions& opt = {});

/// Weights on the left over a window grid: a convolution without im2col. The caller lays the
/// input out so that every weight column k reads the activations at one fixed offset: X element
/// (k, q) at x[koff[k] + q] (sparse_ops.cc: zero-padded, stride-phase-split input planes, where
/// q walks the output pixels on rows of `width` columns, of which the first `valid` are real
/// outputs). Grid column q (q < N) goes to Y column (q / width) * valid + q % width when
/// q % width < valid and is dropped otherwise. x[koff[k] + q] must be readable for q < N + 32
/// (a tile reads whole vectors). ep.residual is indexed like Y.
struct F32Grid {
  const float* x = nullptr;
  const int32_t* koff = nullptr;  // [w.in]
  int64_t width = 1, valid = 1;
  // Nullable: koff resolved per stored entry (eoff[e] = koff[k of entry e], resolve_grid_offsets):
  // the kernels then skip the koff lookup, one load per entry in a load-bound loop.
  const int32_t* eoff = nullptr;
};
/// eoff for `w` over a grid's koff (f32_spmm_left_grid): one int32 per stored entry.
std::vector<int32_t> resolve_grid_offsets(const SparseF32Weights& w, const int32_t* koff);
void f32_spmm_left_grid(const SparseF32Weights& w, int64_t N, const F32Grid& g, float* y,
                        int64_t ldy, const Epilogue& ep, ThreadPool* pool,
                        const SpmmOptions& opt = {});

/// Weights on the right (Gemm/MatMul with constant B): Y[M, out] = epilogue(X[M, in] W^T),
/// where W was packed as [out, in] (i.e. B [in, out] with s_out = 1); X element (m, k) at
/// x[m * ldx + k], Y element (m, n) at y[m * ldy + n]. ep.bias is per output column
/// (bias_per_row false).
void f32_spmm_right(const SparseF32Weights& w, int64_t M, const float* x, int64_t ldx, float* y,
                    int64_t ldy, const Epilogue& ep, ThreadPool* pool,
                    const SpmmOptions& opt = {});

/// INT8 weights on the left: a.M is N (the pixel count); a.a is X [in, N] (element (k, n) at
/// a[k * lda + n]); a.c is Y [out, N] (element (m, n) at c[m * ldc + n]); bias, b_scale
/// (b_scale_per_column = per output channel) and float_bias are per output channel. Everything
/// else (output kind, requantization, clamp) as in qgemm.h.
void q8_spmm_left(const QGemmArgs& a, const SparseQ8Weights& w, ThreadPool* pool,
                  const SpmmOptions& opt = {});

/// INT8 weights on the right: exactly qgemm()'s contract (A = X [M, in], C = Y [M, out]) with B
/// the sparse weights packed as [out, in].
void q8_spmm_right(const QGemmArgs& a, const SparseQ8Weights& w, ThreadPool* pool,
                   const SpmmOptions& opt = {});

// ---------------------------------------------------------------------------------------------
// Cost model.

/// The dense kernel a layer runs when it does not run sparse. The crossover tables were measured
/// against the packed-weight GEMMs (gemm); every other path's speed relative to those is one
/// measured factor (sparse_driver.cc: kDensePaths, re-measured by
/// benchmarks/calibrate_sparse.py).
enum class DensePath {
  gemm,           // f32_gemm / qgemm on packed weights: Gemm, MatMul
  conv_1x1,       // FP32 1x1 stride-1 conv on the GEMM engine (conv.cc)
  conv_im2col,    // FP32 conv with im2col panels (conv.cc)
  conv_winograd,  // FP32 3x3 stride-1 Winograd F(2x2, 3x3) (conv_winograd.cc)
  q8_nhwc_1x1,    // INT8 channels-last 1x1 conv (q8_conv_nhwc.h)
  q8_nhwc,        // INT8 channels-last conv, other windows
  q8_nchw,        // INT8 NCHW conv (q8_conv.h)
};
const char* dense_path_name(DensePath p);
/// The path's factor (below): its speed relative to the packed GEMM's.
double dense_path_factor(bool int8, DensePath p);
/// No layer runs sparse in auto mode above this stored density, whatever the factors say: the
/// calibration measured nothing denser (benchmarks/calibrate_sparse.py sweeps up to 0.7).
constexpr double kSparseMaxDensity = 0.7;

/// Which engine a layer should use, from its shape and packed weights. `cols` is the extent the
/// weights do not touch (N pixels on the left, M rows on the right). The relative cost is the
/// density of the stored weights (block padding included) times the dense path's factor, over
/// the crossover density measured for the layout and extent against the packed GEMMs (see
/// sparse_driver.cc): sparse is predicted faster at <= 1.
double sparse_cost_f32(const SparseF32Weights& w, int64_t cols,
                       DensePath dense = DensePath::gemm);
double sparse_cost_q8(const SparseQ8Weights& w, int64_t cols, DensePath dense = DensePath::gemm);
bool sparse_is_faster_f32(const SparseF32Weights& w, int64_t cols,
                          DensePath dense = DensePath::gemm);
bool sparse_is_faster_q8(const SparseQ8Weights& w, int64_t cols,
                         DensePath dense = DensePath::gemm);
/// The density at or below which sparse wins, for a packed layout (R, INT8 pairing kr; the
/// quads' figures where AVX-512 VNNI is usable are against the VNNI dense GEMM).
double sparse_crossover_density(bool int8, int block_rows, int kr, int64_t cols);

// ---------------------------------------------------------------------------------------------
// Micro-kernel level (driver, tests, benchmarks).

/// One call: row blocks [0, nblocks) of one K chunk, against one activation panel.
/// Contract: panel row k (k < kc) at x + k * NT (NT = the kernel's tile; NT == 1 is the
/// vector form), 32-byte aligned when NT >= 8, all NT lanes readable; entries of block b are
/// [ptr[b], ptr[b + 1]) (absolute indices into kidx / w). Writes rows [0, rows) (rows <=
/// nblocks * R), lanes [0, nt), row i at y + i * ldy.
struct F32SpmmArgs {
  int64_t nblocks = 0, rows = 0, nt = 0;
  const int32_t* ptr = nullptr;
  const uint16_t* kidx = nullptr;
  const float* w = nullptr;   // R per entry
  const float* x = nullptr;   // the panel
  // Nullable: panel row k at x + koff[k] (any alignment; a window grid) instead of x + k * NT.
  // NT >= 8 only.
  const int32_t* koff = nullptr;
  // Nullable, with koff: entry e's row at x + eoff[e] (e absolute, as for w), koff unread.
  const int32_t* eoff = nullptr;
  const float* acc_in = nullptr;  // nullable: start from these sums (row i at acc_in + i * NT)
  float* y = nullptr;
  int64_t ldy = 0;
  bool epilogue = false;        // false: plain sums (the chunks before the last)
  const float* bias = nullptr;  // nullable, per row (the block's first row at bias[0])
  Act act = Act::none;          // none, relu, clip or leaky_relu (others: the driver's job)
  float alpha = 0, beta = 0;
};
using F32SpmmFn = void (*)(const F32SpmmArgs& p);

/// INT8: pairs instead of entries, blocks by their pair counts (block b's pairs follow block
/// b - 1's, block 0's start at pair `first`), with SparseQ8Weights' steps and weights; x is the
/// int16 centred panel; writes the int32 sums (no epilogue). Panel layouts: kr = 1: row k at
/// x + k * NT; for NT >= 16 the lanes of every 16 are stored in the order 0-3, 8-11, 4-7, 12-15
/// (what vpunpck{l,h}wd + vpmaddwd turn back into 0-15), NT <= 8 natural. kr = 2: rows k,
/// k + 1 (k even) interleaved at x + k * NT: lane j's pair at [2j, 2j + 1], natural lane order.
/// kr = 4: x is a uint8 panel
/// of the raw bytes u, row k at x + k * NT bytes (NT = 32: groups of 4 lanes in the order
/// 0 2 4 6 1 3 5 7; otherwise natural), and the sums are of u * w' (see SparseQ8Weights).
/// kr = 8: x is a uint8 panel of the raw bytes u in groups of 4 rows: row k, lane j at byte
/// (k / 4) * 4 NT + 4 j + k % 4 (natural lane order; rows past kc up to a multiple of 4 hold the
/// zero point's byte), sums of u * w' as for kr = 4.
struct Q8SpmmArgs {
  int64_t nblocks = 0, rows = 0, nt = 0;
  const uint16_t* count = nullptr;
  int64_t first = 0;
  // Pair e's input steps at kidx + (3 - kr) e, kr = 8: kidx + e / 2 (base 0 at each block's
  // first pair) and its 2R
  // weights at w + 2R e elements (e absolute): int8, or int16 when wide; 4 weight bytes are
  // readable past the last pair.
  const uint8_t* kidx = nullptr;
  const void* w = nullptr;
  bool wide = false;
  const int16_t* x = nullptr;
  const int32_t* acc_in = nullptr;
  int32_t* y = nullptr;
  int64_t ldy = 0;
};
using Q8SpmmFn = void (*)(const Q8SpmmArgs& p);

struct F32SpmmKernel {
  const char* name;  // f32_spmm_<NT>x<R>_<isa>: NT lanes x R output rows per block
  int nt, r;
  const char* isa;
  F32SpmmFn fn;
};
struct Q8SpmmKernel {
  const char* name;  // q8_spmm_<NT>x<R>[c2|q4|c4]_<isa>
  int nt, r, kr;
  const char* isa;
  Q8SpmmFn fn;
};

#define SLIVER_F32_SPMM_KERNEL(name, nt, r, isa) void name(const F32SpmmArgs& p);
#include "../../ukernels/f32_spmm/f32_spmm.inc"
#undef SLIVER_F32_SPMM_KERNEL
#define SLIVER_Q8_SPMM_KERNEL(name, nt, r, kr, isa) void name(const Q8SpmmArgs& p);
#include "../../ukernels/q8_spmm/q8_spmm.inc"
#undef SLIVER_Q8_SPMM_KERNEL

/// All compiled kernels, in .inc order.
std::vector<const F32SpmmKernel*> f32_spmm_kernels();
std::vector<const Q8SpmmKernel*> q8_spmm_kernels();

/// Panel packers and the tile transpose, one set per ISA (same results). A packer writes panel
/// rows [0, kc) of a tile with lanes [0, nt) valid and the rest of the NT lanes zero:
///  rows: source element (k, j) at src[k * ld + j] (weights on the left: X rows);
///  cols: source element (k, j) at src[j * ld + k] (weights on the right: X^T, a transpose).
struct F32SpmmHelpers {
  void (*pack_rows)(int NT, int64_t kc, int64_t nt, const float* src, int64_t ld, float* dst);
  void (*pack_cols)(int NT, int64_t kc, int64_t nt, const float* src, int64_t ld, float* dst);
  // y[j * ldy + i] = t[i * ldt + j] for i < rows, j < cols (pure 32-bit moves: int32 too).
  void (*transpose)(int64_t rows, int64_t cols, const float* t, int64_t ldt, float* y,
                    int64_t ldy);
};

struct Q8ChannelEpilogue;

/// INT8: panel = x - zero_point as int16 (src u8, or i8 when is_signed) in the layout of
/// Q8SpmmArgs for `kr`; padding lanes (and, for kr = 2 and odd kc, the last row's partner) are 0.
/// kr = 4, 8: the uint8 panel of raw bytes (dst reinterpreted), padding lanes = the zero point.
struct Q8SpmmHelpers {
  void (*pack_rows)(int NT, int kr, int64_t kc, int64_t nt, const uint8_t* src, int64_t ld,
                    bool is_signed, int32_t zero_point, int16_t* dst);
  void (*pack_cols)(int NT, int kr, int64_t kc, int64_t nt, const uint8_t* src, int64_t ld,
                    bool is_signed, int32_t zero_point, int16_t* dst);
  void (*epilogue)(const Q8ChannelEpilogue& p, const int32_t* acc, int64_t acc_stride,
                   int64_t rows, int64_t cols, void* y, int64_t ldy);
};

extern const F32SpmmHelpers kF32SpmmHelpersScalar;
extern const Q8SpmmHelpers kQ8SpmmHelpersScalar;
#if defined(__x86_64__) || defined(_M_X64)
extern const F32SpmmHelpers kF32SpmmHelpersAvx2;
extern const Q8SpmmHelpers kQ8SpmmHelpersAvx2;
#endif

/// Finishing of INT8 sums with per-output-channel parameters: v = acc + bias[c], then the
/// output kind of qgemm.h with channel c's scale (requant.h's operation order), where c is the
/// row i (weights on the left: Y rows are channels) or, with per_column, the column j (weights
/// on the right). Row i of acc at acc + i * acc_stride; writes rows x cols elements, row i at
/// y + i * ldy (element size by output kind). The per-channel arrays are readable 8 values past
/// the last channel used (the driver pads them).
struct Q8ChannelEpilogue {
  QGemmOutput output = QGemmOutput::int32;
  bool per_column = false;
  const int32_t* bias = nullptr;      // [channels] (zeros when there is none)
  const float* scale = nullptr;       // [channels]: requant multiplier, or a_scale * b_scale
  const double* scale_f64 = nullptr;  // [channels], the multiplier as double (onnx_reference)
  const float* float_bias = nullptr;  // [channels] or nullptr
  int32_t y_zero_point = 0, qmin = 0, qmax = 255;
  DType y_type = DType::u8;
  RequantRounding rounding = RequantRounding::onnx_reference;
};
void q8_spmm_epilogue_scalar(const Q8ChannelEpilogue& p, const int32_t* acc, int64_t acc_stride,
                             int64_t rows, int64_t cols, void* y, int64_t ldy);
void q8_spmm_epilogue_avx2(const Q8ChannelEpilogue& p, const int32_t* acc, int64_t acc_stride,
                           int64_t rows, int64_t cols, void* y, int64_t ldy);

}  // namespace sliver
