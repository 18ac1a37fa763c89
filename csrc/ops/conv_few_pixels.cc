// Convs with the pixels on the GEMM's rows (see conv_few_pixels.h).
#include "ops/conv_few_pixels.h"

#include <algorithm>

#include "ops/common.h"
#include "sliver/thread_pool.h"
#include "ukernels/transpose/transpose.h"

namespace sliver::ops {
namespace {

// The swap must save at least this fraction of the padded columns' cost (it adds a transpose).
constexpr double kSwapMargin = 1.12;
constexpr int64_t kMaxPixels = 256;  // C^T and A^T of every K block stay in scratch
// Smaller weight matrices (per group) stay in cache, the copies and the transpose weigh more
// next to their few multiply-adds, and the usual orientation measured as fast or faster.
constexpr int64_t kMinWeights = 32 * 1024;
// Channel panels per task: tasks small enough for a late worker's share to be taken over.
constexpr int64_t kTasksPerThread = 2;
constexpr double kMinParallelMacs = 1 << 17;

// Rows [m0, m1) of y (m x n) = ct^T (ct: n x m, rows ldct apart), then ep's residual and
// post_act (the micro-kernel's epilogue did the bias and act).
// The tiled transpose kernel: the plain double loop (one element per scalar load and strided
// store) took about 12% of a 1x1 320->1280 conv on a 7x7 map (perf, AVX-512).
void transpose_out(const float* ct, int64_t n, int64_t m0, int64_t m1, int64_t ldct, float* y,
                   const Epilogue& ep, const float* residual) {
  static const TransposeFn transpose = transpose_kernel(4);
  transpose(m1 - m0, n, ct + m0, ldct, y + m0 * n, n);
  if (!residual && ep.post_act == Act::none) return;
  Epilogue tail;  // what the micro-kernel's epilogue left: residual, then post_act
  tail.post_act = ep.post_act;
  tail.post_alpha = ep.post_alpha;
  tail.post_beta = ep.post_beta;
  for (int64_t m = m0; m < m1; ++m)
    finish_epilogue(tail, y + m * n, n, residual ? residual + m * n : nullptr);
}

// A^T for a pointwise conv (1x1, stride 1, no padding: pixel p of channel k is x[k * plane + p])
// in the micro-kernel's row tiles: tile t's row k holds the tile's pixels of channel k, zero
// padded to MR. im2col_panels' general path copies each K row of a short tile in two calls
// (the pixels, then the zeros), which on 1x1 convs of 7x7 maps took a third of the conv's time.
template <int MR>
void pack_pointwise_tiles(const float* x, int64_t plane, int64_t kb, const RowTiles& tiles,
                          bool last_block, float* dst) {
  for (int64_t t = 0; t < tiles.count; ++t) {
    const int64_t p0 = tiles.row(t), rows = tiles.rows(t);
    float* d = dst + t * kb * MR;
    // Whole MR-float reads run past the tile into the next pixels, or the next channel's; the
    // last channel of the last block's last tile must stay inside the input.
    const bool whole = p0 + MR <= plane;
    for (int64_t k = 0; k < kb; ++k, d += MR) {
      const float* s = x + k * plane + p0;
      if (whole || (k + 1 < kb || !last_block)) {
        for (int i = 0; i < MR; ++i) d[i] = s[i];
      } else {
        for (int i = 0; i < MR; ++i) d[i] = i < rows ? s[i] : 0.f;
      }
      for (int64_t i = rows; i < MR; ++i) d[i] = 0.f;
    }
  }
}

// Whether conv g reads pixel p of each channel at in.x + p (pointwise, stride 1, no padding).
bool pointwise_direct(const ConvGeom& g, const Im2colSource& in) {
  return g.h.k == 1 && g.w.k == 1 && g.h.s == 1 && g.w.s == 1 && g.h.pad_begin == 0 &&
         g.w.pad_begin == 0 && g.h.out == g.h.in && g.w.out == g.w.in && in.step == 1 &&
         in.ld == g.w.in && in.plane == g.in_plane() && in.tap.size() == 1 && in.tap[0] == 0;
}

}  // namespace

bool few_pixels_suit(int64_t pixels, int64_t m, int64_t k, const F32GemmKernel& kern) {
  if (pixels <= 0 || pixels > kMaxPixels || m * k < kMinWeights) return false;
  // Columns the usual orientation pays for: full panels, and a last one of <= NR/2 columns at
  // half the cost (the kernel's one-vector tiles).
  const int64_t nr = kern.nr, full = pixels / nr, rest = pixels % nr;
  const int64_t paid = full * nr + (rest == 0 ? 0 : rest <= nr / 2 ? nr / 2 : nr);
  return static_cast<double>(pixels) * kSwapMargin < static_cast<double>(paid);
}

void conv_few_pixels(const ConvGeom& g, const Im2colSource& in, int64_t kh, int64_t kw,
                     const std::vector<std::shared_ptr<PackedB>>& w, int64_t cpb,
                     const Epilogue& ep, float* y, ThreadPool* pool) {
  const F32GemmKernel& kern = f32_gemm_kernel();
  const int64_t MR = kern.mr, NR = kern.nr, ohw = g.out_plane();
  const int64_t cg = g.c / g.group, mg = g.m / g.group, taps = kh * kw, k = cg * taps;
  const RowTiles tiles(ohw, MR);
  const int64_t panels = (mg + NR - 1) / NR, nr = mg - (panels - 1) * NR;
  float* at = thread_scratch(0, static_cast<size_t>(tiles.count * MR * k));  // A^T, K-block-major
  float* ct = thread_scratch(2, static_cast<size_t>(ohw * mg));
  // The micro-kernel's epilogue does bias (per column here) and act; residual and post_act
  // need Y's layout, so they run after the transpose.
  Epilogue ep_t;
  ep_t.act = ep.act;
  ep_t.alpha = ep.alpha;
  ep_t.beta = ep.beta;
  int threads = pool ? pool->num_threads() : 1;
  if (static_cast<double>(mg) * k * ohw < kMinParallelMacs) threads = 1;
  const int64_t tasks = threads > 1 ? std::min(panels, kTasksPerThread * threads) : 1;
  const int64_t kblocks = (cg + cpb - 1) / cpb;
  const bool direct = pointwise_direct(g, in);
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t gi = 0; gi < g.group; ++gi) {
      const float* x = in.x + (n * g.c + gi * cg) * in.plane;
      parallel_for(pool, kblocks, static_cast<double>(cpb * taps * ohw),
                   [&](int64_t b0, int64_t b1) {
                     for (int64_t b = b0; b < b1; ++b) {
                       const int64_t c0 = b * cpb, c1 = std::min(cg, c0 + cpb);
                       float* dst = at + c0 * taps * tiles.count * MR;
                       const bool last = c1 == cg && n + 1 == g.n && gi + 1 == g.group;
                       if (direct && (MR == 8 || MR == 6)) {
                         (MR == 8 ? pack_pointwise_tiles<8> : pack_pointwise_tiles<6>)(
                             x + c0 * in.plane, in.plane, c1 - c0, tiles, last, dst);
                         continue;
                       }
                       im2col_panels(static_cast<int>(MR), g, in, c1 - c0, x + c0 * in.plane,
                                     dst, 0, ohw, 0, tiles.count,
                                     &tiles);
                     }
                   });
      ep_t.bias = ep.bias ? ep.bias + gi * mg : nullptr;
      const PackedB& wb = *w[gi];
      const int64_t mp = panels * NR;
      auto task = [&](int64_t i) {
        const int64_t j0 = panels * i / tasks, j1 = panels * (i + 1) / tasks;
        if (j0 == j1) return;
        Epilogue e = ep_t;
        if (e.bias) e.bias += j0 * NR;
        for (int64_t c0 = 0; c0 < cg; c0 += cpb) {
          const int64_t c1 = std::min(cg, c0 + cpb), pc = c0 * taps, kc = (c1 - c0) * taps;
          conv_gemm_kblock(kern, at + pc * tiles.count * MR, tiles, 0, tiles.count, kc,
                           wb.data.get() + pc * mp + j0 * kc * NR, j1 - j0,
                           j1 == panels ? nr : NR, c0 == 0, c1 == cg ? &e : nullptr,
                           ct + j0 * NR, mg, /*prefetch_b=*/true);
        }
      };
      if (tasks > 1) {
        pool->parallel_tasks(tasks, task);
      } else {
        task(0);
      }
      const int64_t yoff = (n * g.m + gi * mg) * ohw;
      parallel_for(pool, mg, static_cast<double>(ohw), [&](int64_t m0, int64_t m1) {
        transpose_out(ct, ohw, m0, m1, mg, y + yoff, ep,
                      ep.residual ? ep.residual + yoff : nullptr);
      });
    }
  }
}

}  // namespace sliver::ops
