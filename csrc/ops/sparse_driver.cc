// Sparse-weight driver (sparse.h): tiles, K chunks, threads, epilogues.
//
// Loop nest, per task (one tile of activation columns x a range of row blocks):
//   pack the tile's panel (all of K, NT lanes, zero padded; int16 and centred for INT8)
//    for each K chunk: micro-kernel over all the task's row blocks
//      (the first chunk starts from zero, later ones from the partial sums; the last adds the
//       bias and a simple activation and writes Y directly or the tile scratch)
//    then finish: weights on the right transpose the tile into Y's rows; INT8 requantizes;
//    activations without an in-kernel form, the residual and the post-activation run over
//    the finished output segments (ops::finish_epilogue, the vector kernels).
// Chunks are the outer loop so a chunk's panel slice is reused by every row while it is hot; the
// partial sums (rows x NT) stream through L2 instead. Measured on Zen 3, this beat blocking the
// rows into L1-sized groups (chunk-inner), which re-reads each slice from L2 once per group.
// Tiles use the widest NT the block height allows (32 for R = 1, 16 for R = 4, 8 for R = 8, 32
// for both with AVX-512; FP32 window grids and panels of K <= 64 take 64 for R = 1: sharing each
// entry's weight and offset by 8 FMAs instead of 4 made ResNet-18's sparse 3x3 convs ~10%
// faster and MobileNetV2's K = 16-32 1x1 convs 5-20%, where a 64-lane panel of long K measured
// 20% slower: it outgrows L1); the last tile takes the smallest NT that covers the remainder,
// the vector form for one column. Grid rows of 64+ real outputs are tiled row by row
// (grid_row_tiles).
//
// Threads: tasks are (tile, block range) rectangles handed out dynamically; when there are few
// tiles (small batch on the right, a small image on the left) the row blocks are split too, and
// each task packs its own copy of the panel (O(K x NT), small next to its product). Every
// output row is summed in the same order whatever the split, so results do not depend on the
// thread count.
//
// The cost model (end of file) was measured with benchmarks/bench_sparse.py --crossover on the
// 2-core AMD EPYC (Zen 3) development machine: for each shape the dense kernel (f32_gemm /
// qgemm with packed weights) and the sparse kernel were timed at densities 0.05 ... 0.6 and the
// density where the speedup crosses 1 interpolated (log-linear).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "ops/common.h"
#include "ops/window_gather.h"
#include "sliver/cpu.h"
#include "sliver/error.h"
#include "sliver/gemm.h"
#include "sliver/requant.h"
#include "sliver/sparse.h"
#include "sliver/thread_pool.h"

namespace sliver {
namespace {

constexpr size_t kAlign = 64;
// Below this many multiply-adds a call runs on the calling thread only.
constexpr double kMinParallelMacs = 1 << 17;
constexpr int64_t kTasksPerThread = 4;

const F32SpmmKernel kF32Kernels[] = {
#define SLIVER_F32_SPMM_KERNEL(name, nt, r, isa) {#name, nt, r, #isa, name},
#include "../ukernels/f32_spmm/f32_spmm.inc"
#undef SLIVER_F32_SPMM_KERNEL
};
const Q8SpmmKernel kQ8Kernels[] = {
#define SLIVER_Q8_SPMM_KERNEL(name, nt, r, kr, isa) {#name, nt, r, kr, #isa, name},
#include "../ukernels/q8_spmm/q8_spmm.inc"
#undef SLIVER_Q8_SPMM_KERNEL
};

bool isa_ok(const char* isa, bool force_scalar) {
  const std::string s = isa;
  return s == "scalar" || (!force_scalar && isa_usable(s));
}

int kernel_kr(const F32SpmmKernel&) { return 1; }
int kernel_kr(const Q8SpmmKernel& k) { return k.kr; }

template <class K, size_t N>
const K& find_kernel(const K (&table)[N], int nt, int r, int kr, bool force_scalar) {
  for (const K& k : table)
    if (k.nt == nt && k.r == r && kernel_kr(k) == kr && isa_ok(k.isa, force_scalar)) return k;
  fail("sparse: no kernel for tile ", nt, ", block ", r, ", pairing ", kr);
}

bool use_avx2(bool force_scalar) {
#if defined(__x86_64__) || defined(_M_X64)
  return isa_ok("avx2", force_scalar);
#else
  (void)force_scalar;
  return false;
#endif
}

bool use_avx512(bool force_scalar) {
#if defined(__x86_64__) || defined(_M_X64)
  return isa_ok("avx512", force_scalar);
#else
  (void)force_scalar;
  return false;
#endif
}

const F32SpmmHelpers& f32_helpers(bool force_scalar) {
#if defined(__x86_64__) || defined(_M_X64)
  if (use_avx2(force_scalar)) return kF32SpmmHelpersAvx2;
#endif
  return kF32SpmmHelpersScalar;
}

const Q8SpmmHelpers& q8_helpers(bool force_scalar) {
#if defined(__x86_64__) || defined(_M_X64)
  if (use_avx2(force_scalar)) return kQ8SpmmHelpersAvx2;
#endif
  return kQ8SpmmHelpersScalar;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Per-thread buffers (panel, partial sums, transposed tile), grown on demand and kept.
struct Scratch {
  void* buf[3] = {nullptr, nullptr, nullptr};
  size_t cap[3] = {0, 0, 0};
  ~Scratch() {
    for (void* p : buf) std::free(p);
  }
  template <class T>
  T* get(int slot, int64_t n) {
    const size_t bytes = static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(T) + kAlign;
    if (bytes > cap[slot]) {
      std::free(buf[slot]);
      cap[slot] = (bytes + kAlign - 1) / kAlign * kAlign;
      buf[slot] = std::aligned_alloc(kAlign, cap[slot]);
      if (!buf[slot]) throw std::bad_alloc();
    }
    return static_cast<T*>(buf[slot]);
  }
};
thread_local Scratch t_scratch;

struct Tile {
  int64_t c0, nt;  // columns [c0, c0 + nt)
  int NT;          // the kernel's tile
};

// Panels up to this K take 64-lane tiles too (a 16 KiB panel at most: it stays in L1).
constexpr int64_t kWidePanelMaxK = 64;

// zmm: blocked rows take 32 lanes (f32_spmm_avx512.cc; bench_sparse.py shapes at 50-90% zeros:
// R = 4 1.1-1.25x faster than on 16 lanes, R = 8 1.1-1.25x than on 16). Unblocked rows stay at
// 32 lanes but for short K: 64 ran 0.6-0.9x on the left shapes and mlp, 1.1x on bert_ffn1.
int widest_tile(int R, bool wide, bool zmm) {
  return R == 1 ? (wide ? 64 : 32) : zmm ? 32 : R == 4 ? 16 : 8;
}

// min_nt: the narrowest kernel tile allowed (8: no vector form); narrow: a 4-lane form exists.
std::vector<Tile> make_tiles(int64_t cols, int R, bool wide, bool zmm, int forced,
                             int min_nt = 1, bool narrow = false) {
  std::vector<Tile> tiles;
  if (forced) {
    forced = std::max(forced, min_nt);
    for (int64_t c0 = 0; c0 < cols; c0 += forced)
      tiles.push_back({c0, std::min<int64_t>(forced, cols - c0), forced});
    return tiles;
  }
  const int big = widest_tile(R, wide, zmm);
  int64_t c0 = 0;
  for (; c0 + big <= cols; c0 += big) tiles.push_back({c0, big, big});
  const int64_t rem = cols - c0;
  if (rem > 0) {
    const int nt = rem == 1 && min_nt <= 1 ? 1
                   : rem <= 4 && narrow    ? 4
                   : rem <= 8              ? 8
                   : rem <= 16             ? 16
                   : rem <= 32             ? 32
                                           : 64;
    tiles.push_back({c0, rem, nt});
  }
  return tiles;
}

// Tiles along each grid row's real outputs (cols = (rows - 1) * width + valid), 64 lanes then
// the narrowest kernel tile that covers the rest.
std::vector<Tile> grid_row_tiles(const F32Grid& g, int64_t cols) {
  std::vector<Tile> tiles;
  const int64_t rows = (cols - g.valid) / g.width + 1;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < g.valid; c += 64) {
      const int64_t n = std::min<int64_t>(64, g.valid - c);
      const int nt = n > 32 ? 64 : n > 16 ? 32 : n > 8 ? 16 : 8;
      tiles.push_back({r * g.width + c, n, nt});
    }
  }
  return tiles;
}

// Runs fn(tile, block_begin, block_end) over every tile x all blocks, split into tasks.
template <class Fn>
void run_tasks(const std::vector<Tile>& tiles, int64_t nblocks, double macs, ThreadPool* pool,
               const Fn& fn) {
  const int threads = pool ? pool->num_threads() : 1;
  const int64_t ntiles = static_cast<int64_t>(tiles.size());
  if (threads <= 1 || macs < kMinParallelMacs) {
    for (const Tile& t : tiles) fn(t, 0, nblocks);
    return;
  }
  const int64_t want = threads * kTasksPerThread;
  const int64_t per = ceil_div(nblocks, std::clamp<int64_t>(ceil_div(want, ntiles), 1, nblocks));
  const int64_t splits = ceil_div(nblocks, per);
  pool->parallel_tasks(ntiles * splits, [&](int64_t task) {
    const int64_t i = task / splits, s = task % splits;
    fn(tiles[static_cast<size_t>(i)], s * per, std::min(nblocks, (s + 1) * per));
  });
}

// ---- FP32 ----

bool inline_act(Act a) {
  return a == Act::none || a == Act::relu || a == Act::clip || a == Act::leaky_relu;
}

struct F32Problem {
  const SparseF32Weights* w;
  bool left;
  const float* x;
  int64_t ldx;
  float* y;
  int64_t ldy;
  const Epilogue* ep;
  bool act_inline, finish;
  Epilogue rest;  // what finish_epilogue still has to do
  const F32SpmmHelpers* helpers;
  const F32SpmmKernel* kern[65];  // by NT
  const F32Grid* grid;            // non-null: X is a window grid (left only)
  int64_t cols;                   // of X (left) / Y (right)
};

// A tile's lanes on a window grid: lanes [j, j + n) go to Y columns [col, col + n).
struct GridRun {
  int64_t j, col, n;
};

// The runs of tile lanes [0, nt) from grid column c0 that are real outputs (at most NT + 1).
int grid_runs(const F32Grid& g, int64_t c0, int64_t nt, GridRun* runs) {
  int count = 0;
  for (int64_t j = 0; j < nt;) {
    const int64_t q = c0 + j, row = q / g.width, col = q - row * g.width;
    const int64_t seg = std::min(nt - j, g.width - col);
    if (col < g.valid) runs[count++] = {j, row * g.valid + col, std::min(seg, g.valid - col)};
    j += seg;
  }
  return count;
}

void f32_task(const F32Problem& P, const Tile& t, int64_t b0, int64_t b1) {
  const SparseF32Weights& W = *P.w;
  const int R = W.block, NT = t.NT;
  const int64_t K = W.in, kc = W.kc, chunks = W.chunks(), nb = W.blocks();
  const F32SpmmKernel& kern = *P.kern[NT];
  const F32Grid* grid = P.grid;
  // A grid is read in place (x + koff[k] + lane); other X are packed into a panel.
  float* panel = grid ? nullptr : t_scratch.get<float>(0, K * NT);
  if (!grid && P.left) {
    P.helpers->pack_rows(NT, K, t.nt, P.x + t.c0, P.ldx, panel);
    // This thread's likely next tile: its columns of X's K rows (the input planes of a 1x1
    // conv, read in place) are as many streams.
    const int64_t next = t.c0 + NT;
    if (next < P.cols)
      detail::prefetch_panel_source(next, std::min<int64_t>(NT, P.cols - next), K, P.x, P.ldx,
                                    true);
  } else if (!grid) {
    P.helpers->pack_cols(NT, K, t.nt, P.x + t.c0 * P.ldx, P.ldx, panel);
  }
  // Whether the tile's lanes are one run of Y (a panel's columns, or a grid tile inside one
  // row's real outputs): then the last chunk writes Y itself, at column ycol.
  const int64_t gcol = grid ? t.c0 % grid->width : 0;
  const bool to_y = P.left && (!grid || gcol + t.nt <= grid->valid);
  const int64_t ycol = grid ? t.c0 / grid->width * grid->valid + gcol : t.c0;
  const bool direct = to_y && chunks == 1;
  const int64_t r0 = b0 * R, rows = std::min(W.out, b1 * R) - r0;
  float* tmp = direct ? nullptr : t_scratch.get<float>(1, (b1 - b0) * R * NT);
  const Epilogue& ep = *P.ep;
  for (int64_t c = 0; c < chunks; ++c) {
    const bool last = c == chunks - 1;
    F32SpmmArgs a;
    a.nblocks = b1 - b0;
    a.rows = rows;
    a.ptr = W.ptr.data() + c * nb + b0;
    a.kidx = W.kidx.data();
    a.w = W.w.get();
    if (grid) {
      a.x = grid->x + t.c0;
      a.koff = grid->koff + c * kc;
      a.eoff = grid->eoff;
    } else {
      a.x = panel + c * kc * NT;
    }
    a.acc_in = c > 0 ? tmp : nullptr;
    if (last && to_y) {
      a.y = P.y + r0 * P.ldy + ycol;
      a.ldy = P.ldy;
      a.nt = t.nt;
    } else {
      a.y = tmp;
      a.ldy = NT;
      a.nt = last ? t.nt : NT;
    }
    if (last) {
      a.epilogue = true;
      a.bias = ep.bias ? ep.bias + r0 : nullptr;
      if (P.act_inline) {
        a.act = ep.act;
        a.alpha = ep.alpha;
        a.beta = ep.beta;
      }
    }
    kern.fn(a);
  }
  if (!P.left) P.helpers->transpose(rows, t.nt, tmp, NT, P.y + t.c0 * P.ldy + r0, P.ldy);
  const float* res = ep.residual;
  if (grid && !to_y) {  // the real outputs' lanes to their Y columns
    GridRun runs[65];
    const int n = grid_runs(*grid, t.c0, t.nt, runs);
    for (int64_t i = 0; i < rows; ++i) {
      float* yr = P.y + (r0 + i) * P.ldy;
      const float* ri = res ? res + (r0 + i) * ep.ld_residual : nullptr;
      for (int s = 0; s < n; ++s) {
        const GridRun& g = runs[s];
        ops::copy_run(yr + g.col, tmp + i * NT + g.j, g.n);  // inline: runs are <= 64 floats
        if (P.finish) ops::finish_epilogue(P.rest, yr + g.col, g.n, ri ? ri + g.col : nullptr);
      }
    }
    return;
  }
  if (!P.finish) return;
  if (P.left) {
    for (int64_t i = 0; i < rows; ++i) {
      float* yr = P.y + (r0 + i) * P.ldy + ycol;
      const float* ri = res ? res + (r0 + i) * ep.ld_residual + ycol : nullptr;
      ops::finish_epilogue(P.rest, yr, t.nt, ri);
    }
  } else {
    for (int64_t j = 0; j < t.nt; ++j)
      ops::finish_epilogue(P.rest, P.y + (t.c0 + j) * P.ldy + r0, rows,
                           res ? res + (t.c0 + j) * ep.ld_residual + r0 : nullptr);
  }
}

void f32_spmm(const SparseF32Weights& w, bool left, int64_t cols, const float* x, int64_t ldx,
              float* y, int64_t ldy, const Epilogue& ep, ThreadPool* pool,
              const SpmmOptions& opt, const F32Grid* grid = nullptr) {
  const char* fn = left ? "f32_spmm_left" : "f32_spmm_right";
  SLIVER_CHECK(cols >= 0, fn, ": negative size ", cols);
  SLIVER_CHECK(ep.bias_per_row == left, fn, ": the bias must index output channels");
  if (cols == 0 || w.out == 0) return;
  SLIVER_CHECK(x != nullptr || (grid && grid->x && grid->koff) || w.in == 0, fn, ": null X");
  SLIVER_CHECK(y != nullptr, fn, ": null Y");
  if (left) {
    SLIVER_CHECK(grid || w.in <= 1 || ldx >= cols, fn, ": ldx=", ldx, " < N=", cols);
    SLIVER_CHECK(grid || w.out <= 1 || ldy >= cols, fn, ": ldy=", ldy, " < N=", cols);
    SLIVER_CHECK(!grid || (grid->width >= 1 && grid->valid >= 1 && grid->valid <= grid->width),
                 fn, ": grid of ", grid ? grid->valid : 0, " outputs in rows of ",
                 grid ? grid->width : 0);
  } else {
    SLIVER_CHECK(cols <= 1 || ldx >= w.in, fn, ": ldx=", ldx, " < K=", w.in);
    SLIVER_CHECK(cols <= 1 || ldy >= w.out, fn, ": ldy=", ldy, " < out=", w.out);
  }
  SLIVER_CHECK(opt.tile == 0 || opt.tile == 1 || opt.tile == 8 || opt.tile == 16 ||
                   opt.tile == 32 || (opt.tile == 64 && w.block == 1),
               fn, ": no tile ", opt.tile, " for block ", w.block);
  F32Problem P;
  P.w = &w;
  P.left = left;
  P.x = x;
  P.ldx = ldx;
  P.y = y;
  P.ldy = ldy;
  P.ep = &ep;
  P.act_inline = inline_act(ep.act);
  P.rest = Epilogue{};
  P.rest.act = P.act_inline ? Act::none : ep.act;
  P.rest.alpha = ep.alpha;
  P.rest.beta = ep.beta;
  P.rest.post_act = ep.post_act;
  P.rest.post_alpha = ep.post_alpha;
  P.rest.post_beta = ep.post_beta;
  P.finish = !P.act_inline || ep.residual || ep.post_act != Act::none;
  P.helpers = &f32_helpers(opt.force_scalar);
  P.grid = grid;
  P.cols = cols;
  std::fill(std::begin(P.kern), std::end(P.kern), nullptr);
  // A grid has no vector form (the kernels read it at offsets): its last tile is 8 lanes or more.
  // Rows of 64+ real outputs (stems, large images) get tiles of their own, which write Y
  // directly: tiles across rows go through a scratch tile and a copy per run (ResNet-18's 7x7/2
  // stem, 112x112 outputs, alone at 90% zeros: 1068 -> 852 us; 610 -> 489 us with no weights).
  const std::vector<Tile> tiles = grid && grid->valid >= 64 && w.block == 1 && opt.tile == 0
                                      ? grid_row_tiles(*grid, cols)
                                      : make_tiles(cols, w.block, grid || w.in <= kWidePanelMaxK,
                                                   use_avx512(opt.force_scalar), opt.tile,
                                                   grid ? 8 : 1);
  for (const Tile& t : tiles)
    if (!P.kern[t.NT]) P.kern[t.NT] = &find_kernel(kF32Kernels, t.NT, w.block, 1, opt.force_scalar);
  const double macs = static_cast<double>(w.entries) * w.block * cols;
  run_tasks(tiles, w.blocks(), macs, pool,
            [&](const Tile& t, int64_t b0, int64_t b1) { f32_task(P, t, b0, b1); });
}

// ---- INT8 ----

struct Q8Problem {
  const SparseQ8Weights* w;
  const QGemmArgs* a;
  bool left;
  size_t y_elem;
  const Q8SpmmHelpers* helpers;
  const F32SpmmHelpers* f32_helpers;  // its transpose moves the int32 tiles
  const Q8SpmmKernel* kern[33];
  Q8ChannelEpilogue ep;  // per row on the left, per column on the right
};

void q8_task(const Q8Problem& P, const Tile& t, int64_t b0, int64_t b1) {
  const SparseQ8Weights& W = *P.w;
  const QGemmArgs& A = *P.a;
  const int R = W.block, NT = t.NT;
  const int64_t K = W.in, kc = W.kc, chunks = W.chunks(), nb = W.blocks();
  const Q8SpmmKernel& kern = *P.kern[NT];
  int16_t* panel = t_scratch.get<int16_t>(0, (K + 1) * NT);  // + kr = 2's partner of odd K
  const uint8_t* x = static_cast<const uint8_t*>(A.a);
  const bool is_signed = A.a_type == DType::i8;
  const int32_t zx = A.a_zero_point;
  const bool quads = W.kr == 4 || W.kr == kQ8AlignedQuads;
  if (P.left) P.helpers->pack_rows(NT, W.kr, K, t.nt, x + t.c0, A.lda, is_signed, zx, panel);
  else P.helpers->pack_cols(NT, W.kr, K, t.nt, x + t.c0 * A.lda, A.lda, is_signed, zx, panel);
  const int64_t r0 = b0 * R, rows = std::min(W.out, b1 * R) - r0;
  int32_t* tmp = t_scratch.get<int32_t>(1, (b1 - b0) * R * NT);
  uint8_t* y = static_cast<uint8_t*>(A.c);
  for (int64_t c = 0; c < chunks; ++c) {
    Q8SpmmArgs a;
    a.nblocks = b1 - b0;
    a.rows = rows;
    a.nt = c == chunks - 1 ? t.nt : NT;
    a.count = W.count.data() + c * nb + b0;
    a.first = W.first_pair(c * nb + b0);
    a.kidx = W.kidx.data();
    a.w = W.w.get();
    a.wide = W.wide;
    // Chunk c's panel rows; a quad panel holds bytes (sparse.h).
    a.x = quads ? reinterpret_cast<const int16_t*>(reinterpret_cast<const uint8_t*>(panel) +
                                                       c * kc * NT)
                    : panel + c * kc * NT;
    a.acc_in = c > 0 ? tmp : nullptr;
    a.y = tmp;
    a.ldy = NT;
    kern.fn(a);
  }
  Q8ChannelEpilogue ep = P.ep;  // advanced to the task's first channel
  ep.bias += r0;
  if (ep.scale) ep.scale += r0;
  if (ep.scale_f64) ep.scale_f64 += r0;
  if (ep.float_bias) ep.float_bias += r0;
  if (P.left) {
    P.helpers->epilogue(ep, tmp, NT, rows, t.nt, y + (r0 * A.ldc + t.c0) * P.y_elem, A.ldc);
  } else {
    // Tile rows are output channels: transpose to [lanes][channels] first.
    const int64_t ldt = ceil_div(rows, 8) * 8;
    int32_t* tt = t_scratch.get<int32_t>(2, NT * ldt);
    P.f32_helpers->transpose(rows, t.nt, reinterpret_cast<const float*>(tmp), NT,
                             reinterpret_cast<float*>(tt), ldt);
    P.helpers->epilogue(ep, tt, ldt, t.nt, rows, y + (t.c0 * A.ldc + r0) * P.y_elem, A.ldc);
  }
}

void check_q8_args(const QGemmArgs& A, const SparseQ8Weights& W, bool left, const char* fn) {
  SLIVER_CHECK(A.M >= 0, fn, ": negative size ", A.M);
  SLIVER_CHECK(A.a_type == DType::u8 || A.a_type == DType::i8, fn, ": X must be u8 or i8, got ",
               dtype_name(A.a_type));
  const int32_t alo = A.a_type == DType::u8 ? 0 : -128;
  SLIVER_CHECK(A.a_zero_point >= alo && A.a_zero_point <= alo + 255, fn, ": X zero point ",
               A.a_zero_point, " out of range");
  SLIVER_CHECK(A.M * W.in == 0 || A.a != nullptr, fn, ": null X");
  SLIVER_CHECK(A.M * W.out == 0 || A.c != nullptr, fn, ": null Y");
  if (left) {
    SLIVER_CHECK(W.in <= 1 || A.lda >= A.M, fn, ": lda=", A.lda, " < N=", A.M);
    SLIVER_CHECK(W.out <= 1 || A.ldc >= A.M, fn, ": ldc=", A.ldc, " < N=", A.M);
  } else {
    SLIVER_CHECK(A.M <= 1 || A.lda >= W.in, fn, ": lda=", A.lda, " < K=", W.in);
    SLIVER_CHECK(A.M <= 1 || A.ldc >= W.out, fn, ": ldc=", A.ldc, " < out=", W.out);
  }
  if (A.output != QGemmOutput::int32) SLIVER_CHECK(A.b_scale != nullptr, fn, ": b_scale needed");
  if (A.output == QGemmOutput::quantized) {
    SLIVER_CHECK(A.y_type == DType::u8 || A.y_type == DType::i8, fn, ": Y must be u8 or i8");
    const int32_t ylo = A.y_type == DType::u8 ? 0 : -128, yhi = ylo + 255;
    SLIVER_CHECK(A.y_zero_point >= ylo && A.y_zero_point <= yhi, fn, ": Y zero point ",
                 A.y_zero_point, " out of range");
    SLIVER_CHECK(ylo <= A.qmin && A.qmin <= A.qmax && A.qmax <= yhi, fn, ": clamp [", A.qmin,
                 ", ", A.qmax, "] outside the output type");
  }
}

void q8_spmm(const QGemmArgs& A, const SparseQ8Weights& W, bool left, ThreadPool* pool,
             const SpmmOptions& opt) {
  const char* fn = left ? "q8_spmm_left" : "q8_spmm_right";
  check_q8_args(A, W, left, fn);
  const bool quads = W.kr == 4 || W.kr == kQ8AlignedQuads;
  SLIVER_CHECK(opt.tile == 0 || (opt.tile == 1 && !quads) || opt.tile == 8 ||
                   (opt.tile == 4 && W.block == 1 && !quads) ||
                   (opt.tile == 32 && W.block == 1) || (opt.tile == 16 && W.block <= 4),
               fn, ": no tile ", opt.tile, " for block ", W.block, " kr ", W.kr);
  const int64_t cols = A.M, out = W.out;
  if (cols == 0 || out == 0) return;
  Q8Problem P;
  P.w = &W;
  P.a = &A;
  P.left = left;
  P.y_elem = A.output == QGemmOutput::quantized ? 1 : 4;
  P.helpers = &q8_helpers(opt.force_scalar);
  P.f32_helpers = &f32_helpers(opt.force_scalar);
  std::fill(std::begin(P.kern), std::end(P.kern), nullptr);
  // Up to 4 columns of unblocked rows take the narrow form (two pairs per vpmaddwd); quads
  // have neither it nor a vector form (8 lanes at least).
  const std::vector<Tile> tiles =
      make_tiles(cols, W.block, false, false, opt.tile, quads ? 8 : 1, W.block == 1 && !quads);
  for (const Tile& t : tiles)
    if (!P.kern[t.NT])
      P.kern[t.NT] = &find_kernel(kQ8Kernels, t.NT, W.block, W.kr, opt.force_scalar);

  // Per-channel arrays, padded by 8 for the epilogue's vector loads: the bias (zeros if none),
  // the requant multiplier (float, as the reference computes it; and as double) or the
  // dequantization scale, and the float bias.
  const size_t padded = static_cast<size_t>(out) + 8;
  std::vector<int32_t> bias(padded, 0);
  std::vector<float> scale(padded, 0.f), float_bias;
  std::vector<double> scale_f64;
  if (A.bias) std::copy(A.bias, A.bias + out, bias.begin());
  if (quads) {
    // The quad kernels sum raw bytes u times w' (sparse.h): re-centre with -u_zero_point * wsum.
    const uint32_t zu = static_cast<uint32_t>(A.a_zero_point + (A.a_type == DType::i8 ? 128 : 0));
    for (int64_t n = 0; n < out; ++n)
      bias[n] = static_cast<int32_t>(static_cast<uint32_t>(bias[n]) -
                                     zu * static_cast<uint32_t>(W.wsum[n]));
  }
  if (A.output != QGemmOutput::int32) {
    for (int64_t n = 0; n < out; ++n) {
      const float bs = A.b_scale[A.b_scale_per_column ? n : 0];
      scale[n] = A.output == QGemmOutput::quantized
                     ? requant_multiplier(A.a_scale, bs, A.y_scale)
                     : A.a_scale * bs;
    }
    scale_f64.assign(scale.begin(), scale.end());
  }
  if (A.float_bias) {
    float_bias.assign(padded, 0.f);
    std::copy(A.float_bias, A.float_bias + out, float_bias.begin());
  }
  Q8ChannelEpilogue& e = P.ep;
  e.output = A.output;
  e.per_column = !left;
  e.bias = bias.data();
  e.scale = scale.data();
  e.scale_f64 = scale_f64.empty() ? nullptr : scale_f64.data();
  e.float_bias = float_bias.empty() ? nullptr : float_bias.data();
  e.y_zero_point = A.y_zero_point;
  e.qmin = A.qmin;
  e.qmax = A.qmax;
  e.y_type = A.y_type;
  e.rounding = A.rounding;
  const double macs = static_cast<double>(W.pairs) * 2 * W.block * cols;
  run_tasks(tiles, W.blocks(), macs, pool,
            [&](const Tile& t, int64_t b0, int64_t b1) { q8_task(P, t, b0, b1); });
}

// ---- cost model ----

// Density of stored weights (block padding included) at or below which the sparse kernels beat
// the dense ones, per activation-extent class and packed layout: the crossovers of
// `bench_sparse.py --crossover`-style sweeps (1 thread, densities 0.1 ... 0.7, so 0.7 means
// "still faster at 0.7") over out in {16, 64, 512}, in in {144, 576} and extents 1, 4, 8, 16,
// 32, 256 (both layouts; conv-like shapes with in = 27 too), Zen 3, unstructured, 4x1 and 1x4
// patterns. Quads (q4): `bench_sparse.py --dtype q8 --crossover` on conv3x3, conv1x1,
// bert_ffn1 (0.45-0.50) and mlp_b8 (8 columns: 0.22), but inside MobileNetV2 QDQ at 50% zeros
// (1x1 convs on 7x7-14x14 planes, per-node timings with sliver.sparse forced each way) sparse
// ran 15-45% slower where 0.50 chose it: the wide classes take 0.35 / 0.30, which leaves 50%
// layers dense (parity at best in the sweeps) and every 80-90% layer measured sparse.
// Classes: a vector (1); 2-4 and 5-7 columns, which fill half an 8-lane tile while the dense
// GEMM keeps its whole register tile busy (FP32 0.17-0.19 unstructured on the zoo mlp's batch-4
// layers, 256-512 x 512, calibrate_sparse.py; INT8 never, but 0.10-0.11 at 2-4
// columns with the narrow form, same layers); 8-15; 16-31; wide (>= 32: FP32 0.6-0.7; INT8
// 0.4-0.6, 1x4 pairs 0.5-0.7).
// Shape corrections, from the same sweeps: with few output rows (< 32) the per-column panel
// packing is shared by few rows (crossovers about 3/4 of the table's), with very few (< 16: the
// zoo's 10-class heads, 64-512 inputs, 1-32 rows) sparse lost at every density down to 0.05
// (about 1/5); and INT8 with long K (>= 512) chunks a panel that no longer fits L1 (about
// 0.85).
// kF32VectorNote: the FP32 vector class (one activation column, unstructured) was re-measured
// in session 6 on classifier-sized GEMVs, packed GEMM vs sparse, thread CPU time (testing
// SparseF32Problem, right layout): speedups at 10% / 20% nonzeros 1280x1000 1.20 / 0.66,
// 3072x768 1.40 / 0.70, 768x3072 0.98 / 0.56, 512x512 1.11 / 0.60, crossovers 0.10-0.15
// (and inside a session, MobileNetV2's 1280 -> 1000 Gemm at 10% ran 2x faster sparse); it was
// 0.08, which kept 90%-pruned classifiers dense.
struct Crossover {
  double r1, r4, r8, c2, q4;  // INT8 only has c2 and q4
};
constexpr Crossover kF32Classes[] = {
    {0.12, 0.35, 0.35, 0, 0},  // 1: see kF32VectorNote
    {0.17, 0.20, 0.20, 0, 0},  // 2-4
    {0.17, 0.20, 0.20, 0, 0},  // 5-7
    {0.30, 0.50, 0.50, 0, 0},  // 8-15
    {0.50, 0.60, 0.60, 0, 0},  // 16-31
    {0.60, 0.65, 0.65, 0, 0},  // >= 32
};
constexpr Crossover kQ8Classes[] = {
    {0.00, 0.12, 0.08, 0.00, 0.00},  // 1
    {0.11, 0.10, 0.08, 0.12, 0.05},  // 2-4: the narrow form (R = 1; quads have none)
    {0.00, 0.10, 0.08, 0.08, 0.10},  // 5-7
    {0.18, 0.35, 0.35, 0.28, 0.22},  // 8-15
    {0.38, 0.45, 0.45, 0.50, 0.30},  // 16-31
    {0.45, 0.50, 0.45, 0.55, 0.35},  // >= 32
};
constexpr int64_t kFewRows = 32, kVeryFewRows = 16, kLongK = 512;
constexpr double kFewRowsFactor = 0.75, kVeryFewRowsFactor = 0.2, kLongKFactor = 0.85;

// The dense paths against the packed GEMMs of the table, on the same layers: the factor
// multiplies the stored density (a path twice as fast as the GEMM halves the density at which
// sparse still wins). Measured by benchmarks/calibrate_sparse.py (1 thread, AMD EPYC Zen 3, the
// zoo's layers as single-layer models at 30/50/80/90/95% zeros; the factor is the middle of the
// range that minimises the time lost to wrong choices beyond 5% noise). Figures, dense time /
// sparse time at 80% and 90% zeros:
//  conv_1x1 (mobilenet 1x1s, 16-128 channels): 1.8-2.8x and 2.2-3.6x, sparse even at 50% zeros
//    (1.1-1.8x): the sparse kernel reads the input plane as is, the GEMM packs it (fit 0.39-0.45);
//  conv_im2col (stems on 1-3 channels, stride-2 convs, strided 1x1s): 0.9-1.5x and 1.0-1.7x
//    (fit 1.75);
//  conv_winograd (3x3 stride 1, 16-64 channels): 0.8-1.6x and 1.3-2.2x (fit 1.6);
//  q8_nhwc (3x3, with the kNhwcRows correction): 64 outputs 1.2-1.4x and 1.5-1.8x, 32
//    outputs 0.75-0.9x and 0.9-1.1x (fit 1.06); q8_nhwc_1x1: 24-32 outputs 0.9-1.0x and
//    1.0-1.2x (fit 0.67);
//  q8_nchw: not measured (the zoo's integer convs run channels-last), 1.
struct PathFactor {
  DensePath path;
  const char* name;
  double f32, q8;
};
constexpr PathFactor kDensePaths[] = {
    {DensePath::gemm, "gemm", 1.0, 1.0},
    {DensePath::conv_1x1, "conv_1x1", 0.45, 1.0},
    {DensePath::conv_im2col, "conv_im2col", 1.75, 1.0},
    {DensePath::conv_winograd, "conv_winograd", 1.6, 1.0},
    {DensePath::q8_nhwc_1x1, "q8_nhwc_1x1", 1.0, 0.7},
    {DensePath::q8_nhwc, "q8_nhwc", 1.0, 1.1},
    {DensePath::q8_nchw, "q8_nchw", 1.0, 1.0},
};
constexpr double kNoCost = 1e9;  // no measurement says sparse can win
// The sparse NHWC conv transposes every pixel's K window values into its panel and its output
// sums back, costs that its output channels share: with fewer than kNhwcRows of them the
// crossover falls with their square (calibrate_sparse.py, zoo layers at 90% zeros: 64 outputs
// 1.5-1.7x faster sparse, 32 outputs 0.8-0.9x, 16-24 outputs 0.5-0.9x).
constexpr double kNhwcRows = 64;
// ... unless a 1x1 conv's rows are long: with this many stored weights a row the kernel's work
// hides those costs (MobileNetV2 QDQ, per-node timings with sliver.sparse forced each way: 1x1
// projections 96/144/192 -> 24/32 at 10-20% nonzeros, 9.6-38 a row, ran 1.3-1.6x faster sparse;
// the 16-32 -> 16-192 ones, 1.6-6.4 a row, 0.6-0.8x). Not for larger windows, whose K window
// values a pixel transposes grow with the window (calibrate_sparse.py: 3x3 convs to 16-32
// outputs at 11-25% nonzeros, 16-72 a row, ran sparse 0.56-0.92x without the correction).
constexpr double kNhwcLongRow = 8;

const PathFactor& path_factor(DensePath p) {
  for (const PathFactor& f : kDensePaths)
    if (f.path == p) return f;
  return kDensePaths[0];
}

// Stored density x factor / crossover, and never below stored / kSparseMaxDensity; all-zero
// weights always win (only the epilogue runs).
double relative_cost(double stored, double crossover, double factor) {
  if (stored == 0) return 0;
  if (crossover <= 0) return kNoCost;
  return std::max(stored * factor / crossover, stored / kSparseMaxDensity);
}

int extent_class(int64_t cols) {
  return cols <= 1 ? 0 : cols <= 4 ? 1 : cols < 8 ? 2 : cols < 16 ? 3 : cols < 32 ? 4 : 5;
}

// The table's crossover adjusted for the weight's shape.
// An FP32 GEMV whose weights exceed L2 reads them from memory on every run inside a model
// (the rest of the network evicts them): there the sparse form's fewer bytes win up to a higher
// density than kF32VectorNote's warm-cache table says. Per-node timings in sessions (1 thread,
// `sliver.sparse` forced each way): classifiers 1280 -> 1000 (MobileNetV2) and 512 -> 1000
// (ResNet-18), sparse / dense time 0.57-0.65 at 20% nonzeros, 1.37-1.44 at 50%.
constexpr int64_t kColdGemvBytes = 1 << 20;
constexpr double kColdGemvCrossover = 0.30;
// The same for INT8 weights of 1 MiB and more: MobileNetV2 QDQ's 1280 -> 1000 classifier at 90%
// zeros (AVX-512 VNNI Xeon, 1 thread, per-node timings with `sliver.sparse` forced each way, two
// runs each) took 63.7 / 66.9 us sparse and 63.2 / 67.7 us dense, while the sparse form holds
// 0.27 MB instead of 1.3 MB; the warm-cache sweep (kQ8VnniQuadClasses) has sparse lose there.
constexpr double kColdQ8GemvCrossover = 0.11;

// With VNNI the dense INT8 GEMM runs 3-4x faster than the AVX2 kernels the table was measured
// against. For the layouts whose sparse kernels stay AVX2 (pairs, blocks) `bench_sparse.py
// --dtype q8 --crossover` on an AVX-512 VNNI Xeon put the wide crossovers at 0.08-0.09
// unstructured and 0.11-0.15 in 4x1 blocks (conv3x3, conv1x1, bert_ffn1, mlp), about 0.2 of the
// table's.
constexpr double kVnniDenseFactor = 0.3;
// FP32 needs no such factor: its sparse kernels gained AVX-512 with the dense GEMM. On an
// AVX-512 Xeon (1 thread) `bench_sparse.py --crossover` and the same sweep at 4-64 columns
// (768x768, 3072x768 right, 128x576 left) put the crossovers, unstructured / 4x1, at 0.50-0.60
// / >= 0.60 wide, 0.44-0.57 / >= 0.60 at 16-31 columns, 0.26-0.29 / 0.53-0.57 at 8 and
// 0.20-0.22 / 0.38-0.50 at 4 (the table: 0.60 / 0.65, 0.50 / 0.60, 0.30 / 0.50, 0.17 / 0.20);
// and inside BERT-base (128 rows, per-node timings with sliver.sparse forced each way) the
// MatMuls at 50% zeros ran 1.0-1.3x faster sparse, which a lower wide crossover would lose.

// The quads where AVX-512 VNNI is usable (q8_spmm_avx512vnni.cc), against the VNNI dense GEMM,
// per extent class, as stored densities (c4 counts its groups' padding zeros) before the long-K
// correction (every shape measured has K >= 512: the figures are the crossovers / 0.85).
// Emerald Rapids Xeon, 1 thread, `bench_sparse.py --dtype q8 --crossover` (>= 32 columns) and
// the same shapes at 4, 8 and 16 columns: q4 (unstructured) crossed at 0.10-0.15 nonzeros
// (0.11-0.12 for the GEMMs, 0.13-0.15 for the convolutions, where ResNet-18 QDQ at 90% zeros ran
// 15% faster with sparse forced than with 0.13 for >= 32 columns),
// c4 at 0.35-0.53 stored (1x4 weights; unstructured ones at 0.12-0.18 nonzeros, which is
// 0.40-0.55 stored) for >= 32 columns, 0.42-0.55 for 16, 0.27 for 8, 0.26 for 4. One column
// (a GEMV in 8-lane tiles) lost to the dense GEMV from 10% nonzeros on (0.69x).
struct QuadCrossover {
  double q4, c4;
};
constexpr QuadCrossover kQ8VnniQuadClasses[] = {
    {0.00, 0.00},  // 1
    {0.11, 0.30},  // 2-4
    {0.11, 0.30},  // 5-7
    {0.12, 0.32},  // 8-15
    {0.15, 0.41},  // 16-31
    {0.15, 0.41},  // >= 32
};

bool vnni_quads(bool int8, int kr) {
  return int8 && (kr == 4 || kr == kQ8AlignedQuads) && isa_usable("avx512vnni");
}

double crossover_for(bool int8, int block_rows, int kr, int64_t cols, int64_t out, int64_t in) {
  if (cols <= 1 && block_rows == 1 && out * in * (int8 ? 1 : 4) >= kColdGemvBytes)
    return int8 ? kColdQ8GemvCrossover : kColdGemvCrossover;
  double d = sparse_crossover_density(int8, block_rows, kr, cols);
  if (out < kFewRows) d *= out < kVeryFewRows ? kVeryFewRowsFactor : kFewRowsFactor;
  if (int8 && in >= kLongK) d *= kLongKFactor;
  if (int8 && qgemm_native_exact() && !vnni_quads(int8, kr)) d *= kVnniDenseFactor;
  return d;
}

}  // namespace

std::vector<const F32SpmmKernel*> f32_spmm_kernels() {
  std::vector<const F32SpmmKernel*> v;
  for (const F32SpmmKernel& k : kF32Kernels) v.push_back(&k);
  return v;
}

std::vector<const Q8SpmmKernel*> q8_spmm_kernels() {
  std::vector<const Q8SpmmKernel*> v;
  for (const Q8SpmmKernel& k : kQ8Kernels) v.push_back(&k);
  return v;
}

void f32_spmm_left(const SparseF32Weights& w, int64_t N, const float* x, int64_t ldx, float* y,
                   int64_t ldy, const Epilogue& ep, ThreadPool* pool, const SpmmOptions& opt) {
  f32_spmm(w, true, N, x, ldx, y, ldy, ep, pool, opt);
}

std::vector<int32_t> resolve_grid_offsets(const SparseF32Weights& w, const int32_t* koff) {
  std::vector<int32_t> eoff(static_cast<size_t>(w.entries));
  const int64_t nb = w.blocks();
  for (int64_t c = 0; c < w.chunks(); ++c)
    for (int64_t e = w.ptr[c * nb]; e < w.ptr[(c + 1) * nb]; ++e)
      eoff[static_cast<size_t>(e)] = koff[c * w.kc + w.kidx[static_cast<size_t>(e)]];
  return eoff;
}

void f32_spmm_left_grid(const SparseF32Weights& w, int64_t N, const F32Grid& g, float* y,
                        int64_t ldy, const Epilogue& ep, ThreadPool* pool, const SpmmOptions& opt) {
  f32_spmm(w, true, N, nullptr, 0, y, ldy, ep, pool, opt, &g);
}

void f32_spmm_right(const SparseF32Weights& w, int64_t M, const float* x, int64_t ldx, float* y,
                    int64_t ldy, const Epilogue& ep, ThreadPool* pool, const SpmmOptions& opt) {
  f32_spmm(w, false, M, x, ldx, y, ldy, ep, pool, opt);
}

void q8_spmm_left(const QGemmArgs& a, const SparseQ8Weights& w, ThreadPool* pool,
                  const SpmmOptions& opt) {
  q8_spmm(a, w, true, pool, opt);
}

void q8_spmm_right(const QGemmArgs& a, const SparseQ8Weights& w, ThreadPool* pool,
                   const SpmmOptions& opt) {
  q8_spmm(a, w, false, pool, opt);
}

double sparse_crossover_density(bool int8, int block_rows, int kr, int64_t cols) {
  if (vnni_quads(int8, kr)) {
    const QuadCrossover& q = kQ8VnniQuadClasses[extent_class(cols)];
    return kr == 4 ? q.q4 : q.c4;
  }
  if (int8 && kr == kQ8AlignedQuads) return 0;  // packed only where VNNI is usable
  const Crossover& c = (int8 ? kQ8Classes : kF32Classes)[extent_class(cols)];
  if (int8 && kr == 2) return c.c2;
  if (int8 && kr == 4) return c.q4;
  return block_rows >= 8 ? c.r8 : block_rows >= 4 ? c.r4 : c.r1;
}

const char* dense_path_name(DensePath p) { return path_factor(p).name; }

double dense_path_factor(bool int8, DensePath p) {
  return int8 ? path_factor(p).q8 : path_factor(p).f32;
}

double sparse_cost_f32(const SparseF32Weights& w, int64_t cols, DensePath dense) {
  if (w.out * w.in == 0 || cols <= 0) return kNoCost;
  const double stored = static_cast<double>(w.entries) * w.block /
                        (static_cast<double>(w.out) * static_cast<double>(w.in));
  return relative_cost(stored, crossover_for(false, w.block, 1, cols, w.out, w.in),
                       path_factor(dense).f32);
}

double sparse_cost_q8(const SparseQ8Weights& w, int64_t cols, DensePath dense) {
  if (w.out * w.in == 0 || cols <= 0) return kNoCost;
  const double stored = static_cast<double>(w.pairs) * 2 * w.block /
                        (static_cast<double>(w.out) * static_cast<double>(w.in));
  double c = crossover_for(true, w.block, w.kr, cols, w.out, w.in);
  const double per_row = stored * static_cast<double>(w.in);
  const bool long_1x1 = dense == DensePath::q8_nhwc_1x1 && per_row >= kNhwcLongRow;
  if ((dense == DensePath::q8_nhwc || dense == DensePath::q8_nhwc_1x1) && !long_1x1) {
    const double rows = std::min(1.0, static_cast<double>(w.out) / kNhwcRows);
    c *= rows * rows;
  }
  return relative_cost(stored, c, path_factor(dense).q8);
}

bool sparse_is_faster_f32(const SparseF32Weights& w, int64_t cols, DensePath dense) {
  return sparse_cost_f32(w, cols, dense) <= 1.0;
}

bool sparse_is_faster_q8(const SparseQ8Weights& w, int64_t cols, DensePath dense) {
  return sparse_cost_q8(w, cols, dense) <= 1.0;
}

}  // namespace sliver
