// The shared conv GEMM engine and input padding (see conv_igemm.h).
#include "ops/conv_igemm.h"

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

namespace sliver::ops {
namespace {

// K block of conv_gemm_panels: a B panel (KC x NR) stays in L1 next to an A panel.
constexpr int64_t kMaxKC = 320;
// conv_gemm_kblock: B panels reused from L1 by every row tile of an A block (about 24 KiB), and
// A blocks reused from L2 by every group of B panels (about 128 KiB).
constexpr int64_t kL1BFloats = 6 * 1024;
constexpr int64_t kL2AFloats = 32 * 1024;

// n floats to dst, src == nullptr: zeros. Whole 8-float moves plus an overlapping last one:
// rows here are short, and a call to memcpy/memset per row costs more than the copy.
inline void copy_or_zero(float* dst, const float* src, int64_t n) {
  if (n < 8) {
    for (int64_t t = 0; t < n; ++t) dst[t] = src ? src[t] : 0.f;
    return;
  }
  constexpr float kZeros[8] = {};
  int64_t t = 0;
  for (; t + 8 <= n; t += 8) std::memcpy(dst + t, src ? src + t : kZeros, 32);
  if (t < n) std::memcpy(dst + n - 8, src ? src + n - 8 : kZeros, 32);
}

// dst[t] = src[t * s] for t < n; S > 0: s == S, known at compile time (vectorisable).
template <int S>
inline void gather_strided(float* __restrict dst, const float* __restrict src, int64_t n,
                           int64_t s) {
  const int64_t step = S > 0 ? S : s;
  for (int64_t t = 0; t < n; ++t) dst[t] = src[t * step];
}

}  // namespace

std::shared_ptr<PackedA> pack_conv_weights(const F32GemmKernel& kern, int64_t m, int64_t k,
                                           const float* w, int64_t kc) {
  auto p = std::make_shared<PackedA>();
  p->M = m;
  p->K = k;
  p->mr = kern.mr;
  p->kc = kc > 0 && kc < k ? kc : 0;
  const int64_t mr = kern.mr, block = p->kc > 0 ? p->kc : std::max<int64_t>(k, 1);
  const RowTiles tiles(m, mr);
  const size_t floats = tiles.count * std::max<int64_t>(k, 1) * mr;
  const size_t bytes = (sizeof(float) * floats + 63) / 64 * 64;
  float* data = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (!data) throw std::bad_alloc();
  p->data = std::shared_ptr<float>(data, std::free);
  for (int64_t pc = 0; pc < k; pc += block) {
    const int64_t kcb = std::min(block, k - pc);
    for (int64_t t = 0; t < tiles.count; ++t) {
      float* dst = data + pc * tiles.count * mr + t * kcb * mr;
      const float* src = w + tiles.row(t) * k + pc;
      for (int64_t kk = 0; kk < kcb; ++kk)
        for (int64_t i = 0; i < mr; ++i)
          dst[kk * mr + i] = i < tiles.rows(t) ? src[i * k + kk] : 0.f;
    }
  }
  return p;
}

std::shared_ptr<PackedB> pack_conv_weights_t(const F32GemmKernel& kern, int64_t m, int64_t k,
                                             const float* w, int64_t kc) {
  auto p = std::make_shared<PackedB>();
  p->K = k;
  p->N = m;
  p->nr = kern.nr;
  p->kc = kc > 0 && kc < k ? kc : 0;
  const int64_t nr = kern.nr, block = p->kc > 0 ? p->kc : std::max<int64_t>(k, 1);
  const int64_t mp = (m + nr - 1) / nr * nr;
  const size_t bytes = (sizeof(float) * mp * std::max<int64_t>(k, 1) + 63) / 64 * 64;
  float* data = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (!data) throw std::bad_alloc();
  p->data = std::shared_ptr<float>(data, std::free);
  for (int64_t pc = 0; pc < k; pc += block) {
    const int64_t kcb = std::min(block, k - pc);
    for (int64_t j = 0; j < mp / nr; ++j) {
      float* dst = data + pc * mp + j * kcb * nr;
      for (int64_t kk = 0; kk < kcb; ++kk)
        for (int64_t i = 0; i < nr; ++i)
          dst[kk * nr + i] = j * nr + i < m ? w[(j * nr + i) * k + pc + kk] : 0.f;
    }
  }
  return p;
}

void conv_gemm_panels(const F32GemmKernel& kern, const PackedA& a, int64_t t0, int64_t t1,
                      const float* b, int64_t panels, int64_t nr, float* c, int64_t ldc,
                      const Epilogue* ep) {
  const int64_t NR = kern.nr, MR = kern.mr, K = a.K;
  const RowTiles tiles(a.M, MR);
  // K blocks of equal length (at most kMaxKC): no short last block paying the C reload and the
  // call overhead for little work.
  const int64_t kblocks = std::max<int64_t>(1, (K + kMaxKC - 1) / kMaxKC);
  const int64_t kc_max = (K + kblocks - 1) / kblocks;
  F32GemmUkernelArgs args{};
  args.a_row_stride = 0;
  args.b_k_stride = NR;
  args.b_panel_stride = K * NR;
  args.ldc = ldc;
  args.panels = panels;
  args.nr = nr;
  for (int64_t pc = 0; pc == 0 || pc < K; pc += kc_max) {  // K == 0: the epilogue alone
    const int64_t kc = std::min(kc_max, K - pc);
    args.kc = kc;
    args.c_scale = pc == 0 ? 0.f : 1.f;
    args.ep = pc + kc >= K ? ep : nullptr;
    args.b = b + pc * NR;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t m = tiles.row(t);
      args.mr = tiles.rows(t);
      args.a = a.data.get() + t * K * MR + pc * MR;
      args.c = c + m * ldc;
      args.bias = ep && ep->bias ? ep->bias + m : nullptr;
      args.residual = ep && ep->residual ? ep->residual + m * ep->ld_residual : nullptr;
      kern.fn(args);
    }
  }
}

void conv_gemm_kblock(const F32GemmKernel& kern, const float* a, const RowTiles& tiles,
                      int64_t t0, int64_t t1, int64_t kc, const float* b, int64_t panels,
                      int64_t nr, bool first, const Epilogue* ep, float* c, int64_t ldc,
                      bool prefetch_b) {
  const int64_t NR = kern.nr, MR = kern.mr;
  F32GemmUkernelArgs args{};
  args.a_row_stride = 0;
  args.b_k_stride = NR;
  args.b_panel_stride = kc * NR;
  args.ldc = ldc;
  args.kc = kc;
  args.c_scale = first ? 0.f : 1.f;
  args.ep = ep;
  const int64_t kcs = std::max<int64_t>(kc, 1);
  // Tiles of 1-2 rows run several panels side by side (the kernel's panel groups): give them
  // all. Otherwise B panels in L1-sized groups, and A row tiles in L2-sized blocks.
  const int64_t pl =
      tiles.base <= 2 ? panels : std::clamp<int64_t>(kL1BFloats / (kcs * NR), 1, panels);
  const int64_t mt = std::max<int64_t>(1, kL2AFloats / (kcs * MR));
  for (int64_t tb = t0; tb < t1; tb += mt) {
    const int64_t te = std::min(t1, tb + mt);
    for (int64_t j = 0; j < panels; j += pl) {
      args.panels = std::min(pl, panels - j);
      args.nr = j + args.panels >= panels ? nr : NR;
      args.b = b + j * kc * NR;
      // Streamed B (weights from memory): the calls on this group fetch the next one, a slice
      // each (the hardware prefetcher alone leaves the first tile of each group waiting).
      const char* next = reinterpret_cast<const char*>(b + (j + pl) * kc * NR);
      const int64_t lines = prefetch_b && j + pl < panels
                                ? std::min(pl, panels - j - pl) * kc * NR * 4 / 64 : 0;
      const int64_t per_call = (lines + (te - tb) - 1) / (te - tb);
      for (int64_t t = tb; t < te; ++t) {
        for (int64_t l = (t - tb) * per_call, le = std::min(lines, l + per_call); l < le; ++l)
          __builtin_prefetch(next + l * 64);
        const int64_t m = tiles.row(t);
        args.mr = tiles.rows(t);
        args.a = a + t * kc * MR;
        args.c = c + m * ldc + j * NR;
        args.bias = ep && ep->bias ? ep->bias + (ep->bias_per_row ? m : j * NR) : nullptr;
        args.residual = ep && ep->residual ? ep->residual + m * ep->ld_residual + j * NR : nullptr;
        kern.fn(args);
      }
    }
  }
}

void pad_planes(const ConvGeom& g, const float* x, float* dst, int64_t c0, int64_t c1, int64_t ph,
                int64_t pws, int64_t phases) {
  const AxisGeom &H = g.h, &W = g.w;
  const int64_t row = phases * pws;
  // Per phase p, indices [lo[p], hi[p]) of a padded row come from input columns
  // lo[p] * phases + p - pad_begin ...
  std::vector<int64_t> lo(phases), hi(phases);
  for (int64_t p = 0; p < phases; ++p) {
    const int64_t first = std::max<int64_t>(0, W.pad_begin - p);  // first valid q - p
    lo[p] = std::min(pws, (first + phases - 1) / phases);
    const int64_t end = std::max<int64_t>(0, W.in + W.pad_begin - p);
    hi[p] = std::max(lo[p], std::min(pws, (end + phases - 1) / phases));
  }
  for (int64_t c = c0; c < c1; ++c) {
    const float* xp = x + c * g.in_plane();
    float* dp = dst + c * ph * row;
    for (int64_t r = 0; r < ph; ++r, dp += row) {
      const int64_t ih = r - H.pad_begin;
      if (ih < 0 || ih >= H.in) {
        copy_or_zero(dp, nullptr, row);
        continue;
      }
      for (int64_t p = 0; p < phases; ++p) {
        float* d = dp + p * pws;
        const float* src = xp + ih * W.in + (lo[p] * phases + p - W.pad_begin);  // index lo[p]
        copy_or_zero(d, nullptr, lo[p]);
        if (phases == 1)
          copy_or_zero(d + lo[p], src, hi[p] - lo[p]);
        else if (phases == 2)
          gather_strided<2>(d + lo[p], src, hi[p] - lo[p], 2);
        else
          gather_strided<0>(d + lo[p], src, hi[p] - lo[p], phases);
        copy_or_zero(d + hi[p], nullptr, pws - hi[p]);
      }
    }
  }
}

bool all_finite(const float* x, int64_t n) {
  // x - x is 0 for finite x and NaN otherwise; 8 partial sums keep the loop vectorisable.
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += x[i + j] - x[i + j];
  float total = 0.f;
  for (; i < n; ++i) total += x[i] - x[i];
  for (float a : acc) total += a;
  return total == 0.f;
}

}  // namespace sliver::ops
