// FP32 GEMM driver: cache blocking, operand preparation and threading around a micro-kernel.
//
// Loop nest (BLIS order), per task rectangle of C:
//   jc over N by NC       B block (KC x NC)
//    pc over K by KC      K block: a micro-panel of B (KC x NR) fits L1 next to one of A
//     ic over M by MC     A block (MC x KC): L2-sized, reused by every B micro-panel
//      jr over NC by NR   B micro-panel stays in L1 ...
//       ir over MC by MR  ... while A micro-panels stream from L2 through the micro-kernel
// The first K block folds in beta_c * C, the middle ones add to C, the last applies the epilogue.
//
// Operands. A pre-packed operand is used as is. Row-major A is read in place (the kernel
// broadcasts from MR row pointers) unless N is large enough to amortise packing it. Other raw
// operands are packed into thread-local scratch that lives as long as the thread (no allocation
// in steady state), a micro-panel at a time just before its first use, so the strided source
// reads overlap computation. Row-major B has two in-place modes:
//  - sweep (M <= 2 MR): short K blocks over rows of B, streamed as a GEMV wants them, instead
//    of walking down 16-float columns of a matrix a power of 2 wide.
//  - blocked (M <= 96, or <= 24 for a row stride that is not whole cache lines; the stride
//    spreading over the L2 sets): packing would cost more than the few row tiles that reuse
//    each B panel gain from it.
// With M <= 2 MR the kernel is called once per row of tiles (all panels of the block), so it
// can run 2-4 panels side by side: enough FMA chains and enough concurrent memory streams.
//
// Threads: C is cut into a grid of rectangles on MR/NR tile boundaries, one to four per thread,
// claimed dynamically and shaped to balance work against duplicated packing. K is never split and every tile is computed the same
// way whatever the grid, so results are bit-identical for any thread count.
#include <algorithm>
#include <cassert>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>

#include "sliver/cpu.h"
#include "sliver/gemm.h"
#include "sliver/thread_pool.h"

namespace sliver {
namespace {

// Blocking for Zen 3 (32 KiB L1d, 512 KiB L2 per core); see the header comment for the roles.
constexpr int64_t kKC = 256;
constexpr int64_t kMCTarget = 144;
constexpr int64_t kNCTarget = 3072;
// B sweep mode: K block and N block (one kernel call covers up to NC / NR tiles).
constexpr int64_t kSweepKCMax = 32;  // halved until the rows fit the L1 ways (at least 8)
constexpr int64_t kSweepNC = 4096;
constexpr int64_t kL1Sets = 64, kL1Ways = 8;
// B blocked in-place mode: largest M, and the L2 geometry that decides whether KC rows of B at
// its row stride can stay cached (at most kMaxLinesPerSet lines of a B panel per L2 set).
constexpr int64_t kBlockedBMaxM = 96;
// The same for a row stride that is not a whole number of cache lines (planes such as 55x55,
// 14x14 or 7x7), whose rows straddle lines: in place still wins for a few row tiles (thread
// CPU time, Zen 3, M x K x N: 16x96x3025 1.21x, 16x32x22500 1.14x, 24x64x5625 1.11x faster than
// packing) but loses from 32 rows on (32x144x3135 1.00x, 64x384x196 0.91x, 96x64x785 0.92x).
constexpr int64_t kBlockedBUnalignedMaxM = 24;
constexpr int64_t kL2Sets = 1024;
constexpr int64_t kMaxLinesPerSet = 4;
// Row-major A is packed from this N on: packing then costs under 2% (one pass over A per NC
// columns), and panels avoid the cache-set conflicts of MR rows a power of 2 apart.
constexpr int64_t kPackAMinN = 512;
// Below this many multiply-adds a call runs on one thread (waking a worker costs microseconds).
constexpr double kMinParallelMacs = 1 << 18;
// Cost of packing one element, in multiply-adds (packing moves ~2 floats/cycle, FMA does 16).
constexpr double kPackCostMacs = 8;
constexpr size_t kScratchAlign = 64;
constexpr int64_t kLineFloats = 64 / sizeof(float);

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Per-thread packing buffers, grown on demand and kept for the thread's lifetime.
struct Scratch {
  float* buf[2] = {nullptr, nullptr};
  size_t cap[2] = {0, 0};
  ~Scratch() {
    for (float* p : buf) std::free(p);
  }
  float* get(int which, size_t n) {
    if (n > cap[which]) {
      std::free(buf[which]);
      buf[which] = nullptr;
      cap[which] = 0;
      size_t bytes = (n * sizeof(float) + kScratchAlign - 1) / kScratchAlign * kScratchAlign;
      buf[which] = static_cast<float*>(std::aligned_alloc(kScratchAlign, bytes));
      if (!buf[which]) throw std::bad_alloc();
      cap[which] = n;
    }
    return buf[which];
  }
};
thread_local Scratch t_scratch;

enum class BMode { packed, pack, sweep, blocked };  // given packed, packed here, in place x 2

struct Problem {
  const F32GemmKernel* kern;
  int64_t M, N, K;
  GemmOperandA a;
  GemmOperandB b;
  float* C;
  int64_t ldc;
  const Epilogue* ep;
  float beta_c;
  int64_t kc, mc, nc;  // KC, and MC, NC rounded to the tile
  bool direct_a;       // row-major A read in place
  BMode bmode;
  bool row_calls;  // M <= 2 MR: one kernel call per row of tiles
};

// Computes C[m0:m1, n0:n1]; m0 and n0 are multiples of MR and NR.
void run_rect(const Problem& P, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const F32GemmKernel& kern = *P.kern;
  const int64_t MR = kern.mr, NR = kern.nr, K = P.K;
  const Epilogue& ep = *P.ep;
  Scratch& scratch = t_scratch;
  F32GemmUkernelArgs args{};
  args.ldc = P.ldc;
  args.panels = 1;

  auto call = [&](int64_t m, int64_t mr, const float* a_panel, int64_t n) {
    args.mr = mr;
    args.a = a_panel;
    args.c = P.C + m * P.ldc + n;
    args.bias = ep.bias ? ep.bias + (ep.bias_per_row ? m : n) : nullptr;
    args.residual = ep.residual ? ep.residual + m * ep.ld_residual + n : nullptr;
    kern.fn(args);
  };

  for (int64_t jc = n0; jc < n1; jc += P.nc) {
    const int64_t nc = std::min(P.nc, n1 - jc);
    // K == 0 still takes one (empty) K block to run the epilogue.
    for (int64_t pc = 0; pc < K || (K == 0 && pc == 0); pc += P.kc) {
      const int64_t kc = std::min(P.kc, K - pc);
      args.kc = kc;
      args.c_scale = pc == 0 ? P.beta_c : 1.f;
      args.ep = pc + kc >= K ? &ep : nullptr;

      // B block: panel j (columns jc + j*NR ...) at bblk + j * b_panel_stride. A raw B is packed
      // one panel at a time just before its first use (the first row block), so its strided
      // source reads overlap the computation on the previous panel.
      const float* bblk;
      int64_t b_panel_stride;
      float* b_pack = nullptr;        // non-null: panels still to be packed here
      const float* b_tail = nullptr;  // direct B: the packed partial last panel, if any
      if (P.bmode == BMode::packed) {
        bblk = P.b.packed->panel(jc) + pc * NR;
        b_panel_stride = K * NR;
      } else if (P.bmode != BMode::pack) {
        bblk = P.b.data + pc * P.b.ld + jc;
        b_panel_stride = NR;
        const int64_t full = nc / NR * NR;
        if (full < nc) {
          float* t = scratch.get(1, kc * NR);
          detail::pack_panels(NR, nc - full, kc, bblk + full, P.b.ld, true, t, kc * NR);
          b_tail = t;
        }
      } else {
        b_pack = scratch.get(1, ceil_div(nc, NR) * NR * std::max<int64_t>(kc, 1));
        bblk = b_pack;
        b_panel_stride = kc * NR;
      }
      auto pack_b_panel = [&](int64_t jr) {
        const int64_t cols = std::min(NR, nc - jr);
        const float* src =
            P.b.trans ? P.b.data + (jc + jr) * P.b.ld + pc : P.b.data + pc * P.b.ld + jc + jr;
        detail::pack_panels(NR, cols, kc, src, P.b.ld, !P.b.trans,
                            b_pack + (jr / NR) * b_panel_stride, b_panel_stride,
                            std::min(NR, nc - jr - cols));
      };

      for (int64_t ic = m0; ic < m1; ic += P.mc) {
        const int64_t mc = std::min(P.mc, m1 - ic);
        const bool first_ic = ic == m0;
        // A block: micro-panel i (rows ic + i*MR ...) at ablk + i * a_panel_stride; a raw A that
        // is not read in place is packed like B, a micro-panel at a time on first use.
        const float* ablk;
        int64_t a_panel_stride;
        float* a_pack = nullptr;
        if (P.a.packed) {
          ablk = P.a.packed->panel(ic) + pc * MR;
          a_panel_stride = K * MR;
          args.a_row_stride = 0;
        } else if (P.direct_a) {
          ablk = P.a.data + ic * P.a.ld + pc;
          a_panel_stride = MR * P.a.ld;
          args.a_row_stride = P.a.ld;
        } else {
          a_pack = scratch.get(0, ceil_div(mc, MR) * MR * std::max<int64_t>(kc, 1));
          ablk = a_pack;
          a_panel_stride = kc * MR;
          args.a_row_stride = 0;
        }
        auto pack_a_panel = [&](int64_t ir) {
          const int64_t rows = std::min(MR, mc - ir);
          const float* src =
              P.a.trans ? P.a.data + pc * P.a.ld + ic + ir : P.a.data + (ic + ir) * P.a.ld + pc;
          detail::pack_panels(MR, rows, kc, src, P.a.ld, P.a.trans,
                              a_pack + (ir / MR) * a_panel_stride, a_panel_stride,
                              std::min(MR, mc - ir - rows));
        };

        if (P.row_calls) {
          // Few rows: one call per row of tiles covering the whole block, so that the kernel can
          // run several B panels side by side (more FMA chains, more memory streams).
          if (b_pack && first_ic && kc > 0) {
            const float* src =
                P.b.trans ? P.b.data + jc * P.b.ld + pc : P.b.data + pc * P.b.ld + jc;
            detail::pack_panels(NR, nc, kc, src, P.b.ld, !P.b.trans, b_pack, b_panel_stride);
          }
          const bool in_place = P.bmode == BMode::sweep;
          const int64_t calls_panels = in_place ? nc / NR : ceil_div(nc, NR);
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t mr = std::min(MR, mc - ir);
            if (a_pack && kc > 0) pack_a_panel(ir);
            const float* a_panel = ablk + (ir / MR) * a_panel_stride;
            if (calls_panels > 0) {
              args.panels = calls_panels;
              args.nr = in_place ? NR : nc - (calls_panels - 1) * NR;
              args.b = bblk;
              args.b_k_stride = in_place ? P.b.ld : NR;
              args.b_panel_stride = b_panel_stride;
              call(ic + ir, mr, a_panel, jc);
            }
            if (b_tail) {  // in place: the partial last panel comes from its packed copy
              args.panels = 1;
              args.nr = nc - calls_panels * NR;
              args.b = b_tail;
              args.b_k_stride = NR;
              call(ic + ir, mr, a_panel, jc + calls_panels * NR);
            }
          }
          continue;
        }
        args.panels = 1;
        for (int64_t jr = 0; jr < nc; jr += NR) {
          if (b_pack && first_ic && kc > 0) pack_b_panel(jr);
          args.nr = std::min(NR, nc - jr);
          args.b = bblk + (jr / NR) * b_panel_stride;
          args.b_k_stride = NR;
          if (P.bmode == BMode::blocked) {  // in place, but the partial last panel is packed
            if (args.nr < NR)
              args.b = b_tail;
            else
              args.b_k_stride = P.b.ld;
          }
          // Packed weights come from memory: the calls on this panel prefetch the next one's
          // K block, a slice each (the hardware prefetcher stops at every 4 KiB page, and the
          // panels' K blocks lie K * NR floats apart).
          const bool fetch = P.bmode == BMode::packed && jr + NR < nc;
          const char* next = reinterpret_cast<const char*>(bblk + (jr / NR + 1) * b_panel_stride);
          const int64_t lines = fetch ? kc * NR * 4 / 64 : 0, calls = ceil_div(mc, MR);
          for (int64_t ir = 0; ir < mc; ir += MR) {
            if (a_pack && jr == 0 && kc > 0) pack_a_panel(ir);
            for (int64_t l = lines * (ir / MR) / calls; l < lines * (ir / MR + 1) / calls; ++l)
              __builtin_prefetch(next + 64 * l);
            call(ic + ir, std::min(MR, mc - ir), ablk + (ir / MR) * a_panel_stride, jc + jr);
          }
        }
      }
    }
  }
}

struct Grid {
  int64_t tm = 1, tn = 1;
};

// Largest multiple of the thread count to cut C into: tasks are claimed dynamically, so a thread
// that is descheduled for a while (a shared or virtualised CPU) delays only its current task.
constexpr int64_t kMaxTasksPerThread = 4;
// Accept more tasks while the largest task's work, times the rounds each thread runs, stays
// within this factor of the one-task-per-thread grid (the extra cost is duplicated packing).
constexpr double kSplitSlack = 1.03;

// Picks a tm x tn grid of rectangles (a multiple of `threads` of them), minimising the rounds
// times the largest rectangle's multiply-adds plus its share of packing, then preferring more
// rectangles within kSplitSlack.
Grid choose_grid(const Problem& P, int threads) {
  const int64_t MR = P.kern->mr, NR = P.kern->nr;
  const int64_t tiles_m = ceil_div(P.M, MR), tiles_n = ceil_div(P.N, NR);
  const bool pack_a = !P.a.packed && !P.direct_a, pack_b = P.bmode == BMode::pack;
  auto cost_of = [&](int64_t tm, int64_t tn) {
    const double rows = static_cast<double>(ceil_div(tiles_m, tm) * MR);
    const double cols = static_cast<double>(ceil_div(tiles_n, tn) * NR);
    const double k = static_cast<double>(std::max<int64_t>(P.K, 1));
    double cost = rows * cols * k;
    if (pack_a) cost += kPackCostMacs * rows * k * static_cast<double>(ceil_div(cols, P.nc));
    if (pack_b) cost += kPackCostMacs * cols * k;
    return cost * static_cast<double>(ceil_div(tm * tn, threads));
  };
  // Every tm x tn grid of `tasks` rectangles that the tiles allow.
  auto grids = [&](int64_t tasks, auto&& visit) {
    for (int64_t tm = 1; tm <= tasks; ++tm)
      if (tasks % tm == 0 && tm <= tiles_m && tasks / tm <= tiles_n) visit(tm, tasks / tm);
  };
  Grid best;
  double base = -1;  // the cheapest one-rectangle-per-thread grid's cost
  grids(threads, [&](int64_t tm, int64_t tn) {
    const double cost = cost_of(tm, tn);
    if (base < 0 || cost < base) {
      base = cost;
      best = {tm, tn};
    }
  });
  if (base < 0) return best;  // too few tiles for the threads: one rectangle
  // Pre-packed B (weights, read from memory): every row block of the grid reads all of its
  // columns of B again, so more tasks may not cut M finer than the one-per-thread grid does.
  const bool stream_b = P.bmode == BMode::packed;
  for (int64_t per = 2; per <= kMaxTasksPerThread; ++per)
    grids(per * threads, [&](int64_t tm, int64_t tn) {
      if (cost_of(tm, tn) <= kSplitSlack * base && (!stream_b || tm <= best.tm)) best = {tm, tn};
    });
  return best;
}

// Whether `rows` rows of 16 floats of B, starting at b with row stride ld (floats), spread over
// the L2 sets well enough to be reused from cache (a stride of 1024 floats puts them in a few).
bool l2_friendly_stride(const float* b, int64_t ld, int64_t rows) {
  int per_set[kL2Sets] = {};
  const uintptr_t base = reinterpret_cast<uintptr_t>(b);
  for (int64_t k = 0; k < rows; ++k) {
    const uintptr_t first = (base + k * ld * sizeof(float)) / 64;
    const uintptr_t last = (base + (k * ld + kLineFloats) * sizeof(float) - 1) / 64;
    for (uintptr_t line = first; line <= last; ++line)
      if (++per_set[line % kL2Sets] > kMaxLinesPerSet) return false;
  }
  return true;
}

// K block for the B sweep: the largest (<= kSweepKCMax) whose rows of B, each read 64 floats at
// a time (4 panels side by side), fit the L1 ways of every set they map to. A row stride that
// is a multiple of 4 KiB maps all rows to the same sets and gets 8.
int64_t sweep_kc(const float* b, int64_t ld) {
  for (int64_t kc = kSweepKCMax; kc > kL1Ways; kc /= 2) {
    int per_set[kL1Sets] = {};
    bool fits = true;
    const uintptr_t base = reinterpret_cast<uintptr_t>(b);
    for (int64_t k = 0; k < kc && fits; ++k) {
      const uintptr_t first = (base + k * ld * sizeof(float)) / 64;
      for (uintptr_t line = first; line <= first + 4; ++line)
        fits = ++per_set[line % kL1Sets] <= kL1Ways && fits;
    }
    if (fits) return kc;
  }
  return kL1Ways;
}

[[noreturn]] void bad(const std::string& what) { throw std::invalid_argument("f32_gemm: " + what); }

bool overlaps(const float* p, int64_t rows, int64_t ld, const float* q, int64_t qrows, int64_t qld,
              int64_t cols) {
  const float* p_end = p + (rows - 1) * ld + cols;
  const float* q_end = q + (qrows - 1) * qld + cols;
  return p < q_end && q < p_end;
}

}  // namespace

namespace detail {

void f32_gemm(const F32GemmKernel& kern, int64_t M, int64_t N, int64_t K, const GemmOperandA& a,
              const GemmOperandB& b, float* C, int64_t ldc, const Epilogue& ep, ThreadPool* pool,
              float beta_c) {
  if (M < 0 || N < 0 || K < 0) bad("negative size");
  if (M == 0 || N == 0) return;
  if (!C || ldc < N) bad("C is null or ldc < N");
  if (a.packed) {
    if (a.packed->M != M || a.packed->K != K || a.packed->mr != kern.mr)
      bad("packed A does not match (M, K) or the kernel's MR");
  } else if (K > 0 && (!a.data || a.ld < (a.trans ? M : K))) {
    bad("A is null or lda too small");
  }
  if (b.packed) {
    if (b.packed->K != K || b.packed->N != N || b.packed->nr != kern.nr)
      bad("packed B does not match (K, N) or the kernel's NR");
  } else if (K > 0 && (!b.data || b.ld < (b.trans ? K : N))) {
    bad("B is null or ldb too small");
  }
  if (ep.residual) {
    if (ep.ld_residual < N) bad("ld_residual < N");
    if (overlaps(C, M, ldc, ep.residual, M, ep.ld_residual, N)) bad("residual overlaps C");
  }

  Problem P{};
  P.kern = &kern;
  P.M = M;
  P.N = N;
  P.K = K;
  P.a = a;
  P.b = b;
  P.C = C;
  P.ldc = ldc;
  P.ep = &ep;
  P.beta_c = beta_c;
  // With K == 0 nothing is read: no in-place modes, and packing touches no operand memory.
  P.direct_a = K > 0 && !a.packed && !a.trans && N < kPackAMinN;
  P.bmode = b.packed ? BMode::packed : BMode::pack;
  if (K > 0 && !b.packed && !b.trans && N >= kern.nr) {
    if (M <= 2 * kern.mr)
      P.bmode = BMode::sweep;
    else if (M <= (b.ld % kLineFloats == 0 ? kBlockedBMaxM : kBlockedBUnalignedMaxM) &&
             l2_friendly_stride(b.data, b.ld, std::min(K, kKC)))
      P.bmode = BMode::blocked;
  }
  P.row_calls = M <= 2 * kern.mr;
  P.kc = P.bmode == BMode::sweep ? sweep_kc(b.data, b.ld) : kKC;
  // Few rows and pre-packed B: no A block to keep in cache, so do not block K at all; each B
  // panel is then one sequential read, and all of B one stream (GEMV-like, memory bound).
  if (P.bmode == BMode::packed && M <= 2 * kern.mr) P.kc = std::max<int64_t>(K, 1);
  P.mc = std::max<int64_t>(kMCTarget / kern.mr, 1) * kern.mr;
  P.nc = std::max<int64_t>((P.bmode == BMode::sweep ? kSweepNC : kNCTarget) / kern.nr, 1) * kern.nr;

  int threads = pool ? pool->num_threads() : 1;
  if (static_cast<double>(M) * N * std::max<int64_t>(K, 1) < kMinParallelMacs) threads = 1;
  const Grid g = threads > 1 ? choose_grid(P, threads) : Grid{};
  const int64_t tasks = g.tm * g.tn;
  if (tasks == 1) {
    run_rect(P, 0, M, 0, N);
    return;
  }
  const int64_t tiles_m = ceil_div(M, kern.mr), tiles_n = ceil_div(N, kern.nr);
  pool->parallel_tasks(tasks, [&](int64_t t) {
    const int64_t i = t / g.tn, j = t % g.tn;
    const int64_t m0 = std::min(M, tiles_m * i / g.tm * kern.mr);
    const int64_t m1 = std::min(M, tiles_m * (i + 1) / g.tm * kern.mr);
    const int64_t n0 = std::min(N, tiles_n * j / g.tn * kern.nr);
    const int64_t n1 = std::min(N, tiles_n * (j + 1) / g.tn * kern.nr);
    if (m0 < m1 && n0 < n1) run_rect(P, m0, m1, n0, n1);
  });
}

}  // namespace detail

void f32_gemm(int64_t M, int64_t N, int64_t K, const GemmOperandA& a, const GemmOperandB& b,
              float* C, int64_t ldc, const Epilogue& ep, ThreadPool* pool, float beta_c) {
  detail::f32_gemm(f32_gemm_kernel(), M, N, K, a, b, C, ldc, ep, pool, beta_c);
}

std::shared_ptr<PackedA> pack_a(int64_t M, int64_t K, const float* A, int64_t lda, bool trans_a) {
  return detail::pack_a(f32_gemm_kernel(), M, K, A, lda, trans_a);
}

std::shared_ptr<PackedB> pack_b(int64_t K, int64_t N, const float* B, int64_t ldb, bool trans_b) {
  return detail::pack_b(f32_gemm_kernel(), K, N, B, ldb, trans_b);
}

}  // namespace sliver
