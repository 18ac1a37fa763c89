// Winograd F(2x2, 3x3) convolution (see conv_winograd.h).
//
// The input transform reads the input planes in place (the padding reads as 0). Tiles (2x2
// outputs each) go in blocks sized so that the block's transformed inputs V
// (16 x C x tiles) and GEMM results M (16 x M x tiles) stay in L2. Per block: the input
// transform writes V in the micro-kernel's packed-B layout (panels of NR tiles, channel-major),
// 16 GEMMs write M, the output transform reads M and writes Y with the bias, Relu/Clip and the
// residual applied (other activations run afterwards, on the output planes). Threads take
// blocks; with fewer blocks than threads they also split the output channels.
//
// With the tiles on the GEMMs' rows (WinogradWeights::b) the same steps run transposed: V^T in
// packed-A row tiles, M^T = V^T U^T with U^T streamed as B panels, and the output transform
// reading M^T (tiles x channels) one run of tiles and a chunk of channels at a time.
#include "ops/conv_winograd.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>

#include "ops/common.h"
#include "ukernels/f32_winograd/f32_winograd.h"

namespace sliver::ops {
namespace {

constexpr int64_t kMinChannels = 8;  // fewer: the transforms outweigh the saved multiply-adds
constexpr int64_t kBlockFloats = 64 * 1024;  // V and M of a block: about 256 KiB of L2
constexpr int64_t kMaxBlockTiles = 256;
// Tiles on the rows: every block streams all of U, so blocks are as large as L2 holds (V^T and
// M^T of a block, about 2 MiB). The layout applies where the tiles are few next to the
// channels: on ResNet-18 (1 thread, in the model) its 14x14 maps (49 tiles, 256 channels) ran
// 1.47 -> 1.12 ms per conv and the 7x7 ones 2.65 -> 2.0 ms, its 28x28 maps (196 tiles, 128
// channels) 0.98 -> 1.16 ms, so the columns keep those.
constexpr int64_t kRowsBlockFloats = 512 * 1024;
constexpr int64_t kRowsMaxTiles = 64;
constexpr int64_t kRowsMinChannels = 128;
// K blocks: up to 512 channels in one (blocks of 128 measured no faster on 512 channels; the
// hardware prefetcher streams U^T's panels, which software prefetching only slowed down).
constexpr int64_t kRowsKC = 512;
constexpr int64_t kChunk = 16;  // output channels per pass of the transposed output transform
constexpr int64_t kSkew = 16;  // floats: one cache line, keeping panels 64-byte aligned
constexpr double kMinParallelMacs = 1 << 17;
// Tasks per thread to aim for: a worker that wakes late leaves its share to the others.
constexpr int64_t kTasksPerThread = 2;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Tiles on the rows: K (input channels) in blocks of equal length, at most kRowsKC (deeper
// layers would hold V^T and each B panel's block whole per call).
int64_t rows_kc(int64_t cg) {
  return ceil_div(cg, ceil_div(cg, kRowsKC));
}

// The clamp that implements `act` (none, Relu, Clip); false for other activations.
bool as_clamp(Act act, float alpha, float beta, bool* on, float* lo, float* hi) {
  *on = act != Act::none;
  *lo = act == Act::clip ? alpha : 0.f;
  *hi = act == Act::clip ? beta : std::numeric_limits<float>::infinity();
  return act == Act::none || act == Act::relu || act == Act::clip;
}

}  // namespace

bool winograd_suits(int64_t kh, int64_t kw, const std::vector<int64_t>& strides,
                    const std::vector<int64_t>& dilations, int64_t cg, int64_t mg) {
  if (kh != 3 || kw != 3 || strides.size() != 2 || dilations.size() != 2) return false;
  for (size_t i = 0; i < 2; ++i)
    if (strides[i] != 1 || dilations[i] != 1) return false;
  return cg >= kMinChannels && mg >= kMinChannels;
}

int64_t WinogradWeights::bytes() const { return packed_bytes(a) + packed_bytes(b); }

bool winograd_tiles_on_rows(int64_t tiles, int64_t mg, int64_t cg) {
  return tiles > 0 && tiles <= kRowsMaxTiles && std::min(mg, cg) >= kRowsMinChannels;
}

void winograd_pack_weights(const F32GemmKernel& kern, int64_t mg, int64_t cg, const float* w,
                           bool tiles_on_rows, WinogradWeights* u) {
  std::vector<float> uu(16 * mg * cg);  // U_xi (mg x cg), xi-major
  float t[16];
  for (int64_t m = 0; m < mg; ++m) {
    for (int64_t c = 0; c < cg; ++c) {
      f32_winograd_weights(w + (m * cg + c) * 9, t);
      for (int xi = 0; xi < 16; ++xi) uu[(xi * mg + m) * cg + c] = t[xi];
    }
  }
  for (int xi = 0; xi < 16; ++xi) {
    const float* ux = &uu[xi * mg * cg];
    if (tiles_on_rows)
      u->b.push_back(pack_conv_weights_t(kern, mg, cg, ux, rows_kc(cg)));
    else
      u->a.push_back(pack_conv_weights(kern, mg, cg, ux));
  }
}

namespace {

// Runs of tiles [t0, t1) of a tw-wide grid for the transposed layout: a run stays within one
// row of tiles and one row tile of rt (the input kernel's groups of 8 must not straddle either).
// fn(t, n, tile, lane): n tiles from t, at rows lane.. of row tile `tile`.
template <class Fn>
void for_each_row_run(int64_t t0, int64_t t1, int64_t tw, const RowTiles& rt, Fn fn) {
  int64_t tile = 0, lane = 0;
  for (int64_t t = t0; t < t1;) {
    const int64_t n = std::min({t1 - t, tw - t % tw, rt.rows(tile) - lane});
    fn(t, n, tile, lane);
    t += n;
    lane += n;
    if (lane == rt.rows(tile)) ++tile, lane = 0;
  }
}

float clamp_to(float v, float lo, float hi) {
  v = v > lo ? v : lo;  // NaN -> lo, as the transform kernels
  return v < hi ? v : hi;
}

// Y = A^T M A for one tile and channels [0, nc) (nc <= kChunk) of M^T, whose row for the tile
// is at m (channel c at m[xi * xs + c]); then bias, clamps and residual as the output kernels.
// y, residual: channel c's tile origin at [c * plane].
void output_tile_rows(const float* m, int64_t xs, int64_t nc, const float* bias,
                      const F32WinoOutputParams& p, float* y, const float* residual,
                      int64_t plane) {
  float o[4][kChunk];
  for (int64_t c = 0; c < nc; ++c) {
    float mt[16], t[2][2];
    for (int xi = 0; xi < 16; ++xi) mt[xi] = m[xi * xs + c];
    f32_winograd_output_tile(mt, t);
    const float b = bias ? bias[c] : 0.f;
    for (int k = 0; k < 4; ++k) o[k][c] = t[k / 2][k % 2] + b;
  }
  for (int r = 0; r < p.rows; ++r) {
    for (int j = 0; j < p.cols; ++j) {
      const float* oc = o[2 * r + j];
      const int64_t at = r * p.ldy + j;
      for (int64_t c = 0; c < nc; ++c) {
        float v = oc[c];
        if (p.act_clamp) v = clamp_to(v, p.act_lo, p.act_hi);
        if (residual) v += residual[c * plane + at];
        if (p.post_clamp) v = clamp_to(v, p.post_lo, p.post_hi);
        y[c * plane + at] = v;
      }
    }
  }
}

// winograd_conv with the tiles on the GEMMs' rows (u.b).
void winograd_conv_rows(const ConvGeom& g, const WinogradWeights& u, const float* x,
                        const Epilogue& ep, const F32WinoOutputParams& base, bool fused,
                        float* y, ThreadPool* pool) {
  const F32GemmKernel& kern = f32_gemm_kernel();
  const F32WinogradKernel& wk = f32_winograd_kernel();
  const int64_t cg = g.c / g.group, mg = g.m / g.group, NR = kern.nr, MR = kern.mr;
  const int64_t ohw = g.out_plane(), plane = g.in_plane();
  const int64_t th = ceil_div(g.h.out, 2), tw = ceil_div(g.w.out, 2), tiles = th * tw;
  const int64_t npanels = ceil_div(mg, NR), ldm = npanels * NR;
  const int64_t kc = u.b[0]->kc > 0 ? u.b[0]->kc : cg;
  int threads = pool ? pool->num_threads() : 1;
  if (16.0 * mg * cg * tiles * g.n * g.group < kMinParallelMacs) threads = 1;
  const int64_t blocks0 =
      ceil_div(tiles, std::max<int64_t>(MR, kRowsBlockFloats / (16 * (cg + ldm))));
  const int64_t nb = ceil_div(tiles, blocks0), blocks = ceil_div(tiles, nb);
  const int64_t units = g.n * g.group * blocks, want = kTasksPerThread * threads;
  // Splitting the channels splits the stream of U; each part repeats the input transform, so
  // no more parts than threads (ResNet-18 in the model, 2 threads, per conv: 7x7 maps 1.26-1.36
  // -> 1.19-1.27 ms, 14x14 0.77-0.80 -> 0.66-0.69 ms with 2 parts instead of 4).
  const int64_t msplit =
      threads > 1 && units < want ? std::min(ceil_div(threads, units), npanels) : 1;

  auto task = [&](int64_t i) {
    const int64_t unit = i / msplit, ms = i % msplit;
    const int64_t ng = unit / blocks, blk = unit % blocks, img = ng / g.group, gi = ng % g.group;
    const int64_t p0 = npanels * ms / msplit, p1 = npanels * (ms + 1) / msplit;
    if (p0 == p1) return;
    const int64_t t0 = blk * nb, t1 = std::min(tiles, t0 + nb), nt = t1 - t0;
    const RowTiles rt(nt, MR);
    const int64_t vxs = rt.count * MR * cg + kSkew, mxs = nt * ldm + kSkew;
    float* v = thread_scratch(0, static_cast<size_t>(16 * vxs));
    float* mb = thread_scratch(2, static_cast<size_t>(16 * mxs));
    // V^T K-block-major as U^T: block pc (channels pc .. pc + kcb) at pc * count * MR, row
    // tile i within it at i * kcb * MR.
    F32WinoInputParams ip{};
    ip.ld = ip.in_w = g.w.in;
    ip.in_h = g.h.in;
    ip.plane = plane;
    ip.v_c_stride = MR;
    ip.v_xi_stride = vxs;
    for (int64_t pc = 0; pc < cg; pc += kc) {
      const int64_t kcb = std::min(kc, cg - pc);
      ip.x = x + (img * g.c + gi * cg + pc) * plane;
      ip.channels = kcb;
      for_each_row_run(t0, t1, tw, rt, [&](int64_t t, int64_t n, int64_t tile, int64_t lane) {
        ip.n = n;
        ip.row0 = 2 * (t / tw) - g.h.pad_begin;
        ip.col0 = 2 * (t % tw) - g.w.pad_begin;
        ip.v = v + pc * rt.count * MR + tile * kcb * MR + lane;
        wk.input(ip);
      });
    }
    const int64_t nr = p1 == npanels ? mg - (npanels - 1) * NR : NR;
    for (int xi = 0; xi < 16; ++xi) {
      const float* b = u.b[gi * 16 + xi]->data.get();
      for (int64_t pc = 0; pc < cg; pc += kc) {
        const int64_t kcb = std::min(kc, cg - pc);
        conv_gemm_kblock(kern, v + xi * vxs + pc * rt.count * MR, rt, 0, rt.count, kcb,
                         b + pc * ldm + p0 * kcb * NR, p1 - p0, nr, pc == 0, nullptr,
                         mb + xi * mxs + p0 * NR, ldm);
      }
    }
    const int64_t c0 = p0 * NR, c1 = std::min(mg, p1 * NR);
    const int64_t ych = (img * g.m + gi * mg) * ohw;
    const float* res = fused && ep.residual ? ep.residual + ych : nullptr;
    const float* bias = ep.bias ? ep.bias + gi * mg : nullptr;
    F32WinoOutputParams op = base;
    for_each_row_run(t0, t1, tw, rt, [&](int64_t t, int64_t n, int64_t tile, int64_t lane) {
      for (int64_t j = 0; j < n; ++j) {
        const int64_t row = (t + j) / tw, col = (t + j) % tw;
        const int64_t at = 2 * row * g.w.out + 2 * col;
        op.rows = std::min<int64_t>(2, g.h.out - 2 * row);
        op.cols = std::min<int64_t>(2, g.w.out - 2 * col);
        const float* mrow = mb + (rt.row(tile) + lane + wino_tile_position(j, n)) * ldm;
        for (int64_t c = c0; c < c1; c += kChunk)
          output_tile_rows(mrow + c, mxs, std::min(kChunk, c1 - c), bias ? bias + c : nullptr,
                           op, y + ych + c * ohw + at, res ? res + c * ohw + at : nullptr, ohw);
      }
    });
  };
  if (threads > 1) {
    pool->parallel_tasks(units * msplit, task);
  } else {
    for (int64_t i = 0; i < units; ++i) task(i);
  }
}

// winograd_conv with the tiles on the GEMMs' columns (u.a).
void winograd_conv_columns(const ConvGeom& g, const WinogradWeights& u, const float* x,
                           const Epilogue& ep, const F32WinoOutputParams& base, bool fused,
                           float* y, ThreadPool* pool) {
  const F32GemmKernel& kern = f32_gemm_kernel();
  const F32WinogradKernel& wk = f32_winograd_kernel();
  const int64_t cg = g.c / g.group, mg = g.m / g.group, NR = kern.nr, ohw = g.out_plane();
  const int64_t th = ceil_div(g.h.out, 2), tw = ceil_div(g.w.out, 2), tiles = th * tw;
  const int64_t plane = g.in_plane();
  const RowTiles rt(mg, kern.mr);
  int threads = pool ? pool->num_threads() : 1;
  if (16.0 * mg * cg * tiles * g.n * g.group < kMinParallelMacs) threads = 1;
  // Blocks: as many tiles as fit the L2 budget, but no fewer blocks than threads when the
  // tiles allow (splitting the rows of W instead repeats the input transform in every thread).
  const int64_t want = kTasksPerThread * threads;
  const int64_t per_thread = ceil_div(ceil_div(tiles * g.n * g.group, want), NR) * NR;
  const int64_t nb = std::min(
      {std::clamp<int64_t>(kBlockFloats / (16 * (cg + mg)) / NR * NR, NR, kMaxBlockTiles),
       ceil_div(tiles, NR) * NR, std::max(NR, per_thread)});
  const int64_t blocks = ceil_div(tiles, nb), units = g.n * g.group * blocks;
  const int64_t msplit =
      threads > 1 && units < want ? std::min<int64_t>(ceil_div(want, units), rt.count) : 1;

  auto task = [&](int64_t i) {
    const int64_t unit = i / msplit, ms = i % msplit;
    const int64_t ng = unit / blocks, blk = unit % blocks, img = ng / g.group, gi = ng % g.group;
    const int64_t r0 = rt.count * ms / msplit, r1 = rt.count * (ms + 1) / msplit;
    if (r0 == r1) return;
    const int64_t t0 = blk * nb, t1 = std::min(tiles, t0 + nb), nt = t1 - t0;
    // The 16 matrices of V and of M lie kSkew floats more than their size apart: at a multiple
    // of 4 KiB apart, the transforms' 16 streams would all fall in the same L1 sets.
    const int64_t panels = ceil_div(nt, NR), ldm = panels * NR;
    const int64_t vxs = panels * cg * NR + kSkew, mxs = mg * ldm + kSkew;
    float* v = thread_scratch(0, static_cast<size_t>(16 * vxs));
    float* mb = thread_scratch(2, static_cast<size_t>(16 * mxs));
    // V: runs of tiles within one row of tiles and one panel.
    F32WinoInputParams ip{};
    ip.x = x + (img * g.c + gi * cg) * plane;
    ip.ld = ip.in_w = g.w.in;
    ip.in_h = g.h.in;
    ip.plane = plane;
    ip.channels = cg;
    ip.v_c_stride = NR;
    ip.v_xi_stride = vxs;
    for (int64_t t = t0; t < t1;) {
      const int64_t row = t / tw, col = t % tw, lane = (t - t0) % NR;
      ip.n = std::min({t1 - t, tw - col, NR - lane});
      ip.row0 = 2 * row - g.h.pad_begin;
      ip.col0 = 2 * col - g.w.pad_begin;
      ip.v = v + (t - t0) / NR * cg * NR + lane;
      wk.input(ip);
      t += ip.n;
    }
    if (const int64_t used = nt - (panels - 1) * NR; used < NR) {  // the GEMM reads all NR
      for (int64_t r = 0; r < 16 * cg; ++r)
        std::memset(v + r / cg * vxs + (panels - 1) * cg * NR + r % cg * NR + used, 0,
                    sizeof(float) * (NR - used));
    }
    for (int xi = 0; xi < 16; ++xi)
      conv_gemm_panels(kern, *u.a[gi * 16 + xi], r0, r1, v + xi * vxs, panels,
                       nt - (panels - 1) * NR, mb + xi * mxs, ldm, nullptr);
    F32WinoOutputParams op = base;
    op.m_xi_stride = mxs;
    for (int64_t m = rt.row(r0); m < rt.row(r1); ++m) {
      const int64_t oc = gi * mg + m;
      float* yc = y + (img * g.m + oc) * ohw;
      const float* res = fused && ep.residual ? ep.residual + (img * g.m + oc) * ohw : nullptr;
      op.bias = ep.bias ? ep.bias[oc] : 0.f;
      for (int64_t t = t0; t < t1;) {
        // The input transform's runs (same order of tiles within them: f32_winograd.h).
        const int64_t row = t / tw, col = t % tw;
        const int64_t n = std::min({t1 - t, tw - col, NR - (t - t0) % NR});
        const int64_t at = 2 * row * g.w.out + 2 * col;
        op.m = mb + m * ldm + (t - t0);
        op.n = n;
        op.y = yc + at;
        op.rows = std::min<int64_t>(2, g.h.out - 2 * row);
        op.cols = std::min(2 * n, g.w.out - 2 * col);
        op.residual = res ? res + at : nullptr;
        wk.output(op);
        t += n;
      }
    }
  };
  if (threads > 1) {
    pool->parallel_tasks(units * msplit, task);
  } else {
    for (int64_t i = 0; i < units; ++i) task(i);
  }
}

}  // namespace

bool winograd_conv(const ConvGeom& g, const WinogradWeights& u, const float* x, const Epilogue& ep,
                   float* y, ThreadPool* pool) {
  const int64_t ohw = g.out_plane(), plane = g.in_plane();
  std::atomic<bool> finite{true};
  parallel_for(pool, g.n * g.c, static_cast<double>(plane), [&](int64_t c0, int64_t c1) {
    if (!all_finite(x + c0 * plane, (c1 - c0) * plane)) finite = false;
  });
  if (!finite) return false;

  F32WinoOutputParams base{};
  const bool fused = as_clamp(ep.act, ep.alpha, ep.beta, &base.act_clamp, &base.act_lo,
                              &base.act_hi) &&
                     as_clamp(ep.post_act, ep.post_alpha, ep.post_beta, &base.post_clamp,
                              &base.post_lo, &base.post_hi);
  if (!fused) base.act_clamp = base.post_clamp = false;  // the whole epilogue runs afterwards
  base.ldy = g.w.out;
  if (u.tiles_on_rows()) {
    winograd_conv_rows(g, u, x, ep, base, fused, y, pool);
  } else {
    winograd_conv_columns(g, u, x, ep, base, fused, y, pool);
  }
  if (!fused) {
    parallel_for(pool, g.n * g.m, static_cast<double>(ohw), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p)
        finish_epilogue(ep, y + p * ohw, ohw, ep.residual ? ep.residual + p * ohw : nullptr);
    });
  }
  return true;
}

}  // namespace sliver::ops
