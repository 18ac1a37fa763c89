// Winograd F(2x2, 3x3) convolution (see conv_winograd.h).
//
// The input transform reads the input planes in place (the padding reads as 0). Tiles (2x2
// outputs each) go in blocks sized so that the block's transformed inputs V
// (16 x C x tiles) and GEMM results M (16 x M x tiles) stay in L2. Per block: the input
// transform writes V in the micro-kernel's packed-B layout (panels of NR tiles, channel-major),
// 16 GEMMs write M, the output transform reads M and writes Y with the bias, Relu/Clip and the
// residual applied (other activations run afterwards, on the output planes). Threads take
// blocks; with fewer blocks than threads they also split the output channels.
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
constexpr int64_t kSkew = 16;  // floats: one cache line, keeping panels 64-byte aligned
constexpr double kMinParallelMacs = 1 << 17;
// Tasks per thread to aim for: a worker that wakes late leaves its share to the others.
constexpr int64_t kTasksPerThread = 2;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

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

std::vector<std::shared_ptr<PackedA>> winograd_pack_weights(const F32GemmKernel& kern, int64_t mg,
                                                            int64_t cg, const float* w) {
  std::vector<float> u(16 * mg * cg);  // U_xi (mg x cg), xi-major
  float t[16];
  for (int64_t m = 0; m < mg; ++m) {
    for (int64_t c = 0; c < cg; ++c) {
      f32_winograd_weights(w + (m * cg + c) * 9, t);
      for (int xi = 0; xi < 16; ++xi) u[(xi * mg + m) * cg + c] = t[xi];
    }
  }
  std::vector<std::shared_ptr<PackedA>> out;
  for (int xi = 0; xi < 16; ++xi) out.push_back(pack_conv_weights(kern, mg, cg, &u[xi * mg * cg]));
  return out;
}

bool winograd_conv(const ConvGeom& g, const std::vector<std::shared_ptr<PackedA>>& u,
                   const float* x, const Epilogue& ep, float* y, ThreadPool* pool) {
  const F32GemmKernel& kern = f32_gemm_kernel();
  const F32WinogradKernel& wk = f32_winograd_kernel();
  const int64_t cg = g.c / g.group, mg = g.m / g.group, NR = kern.nr, ohw = g.out_plane();
  const int64_t th = ceil_div(g.h.out, 2), tw = ceil_div(g.w.out, 2), tiles = th * tw;
  const int64_t plane = g.in_plane();
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
      conv_gemm_panels(kern, *u[gi * 16 + xi], r0, r1, v + xi * vxs, panels,
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
  if (!fused) {
    parallel_for(pool, g.n * g.m, static_cast<double>(ohw), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p)
        finish_epilogue(ep, y + p * ohw, ohw, ep.residual ? ep.residual + p * ohw : nullptr);
    });
  }
  return true;
}

}  // namespace sliver::ops
