// The shared conv GEMM engine and input padding (see conv_igemm.h).
#include "ops/conv_igemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

namespace sliver::ops {
namespace {

// K block of conv_gemm_panels: a B panel (KC x NR) stays in L1 next to an A panel.
constexpr int64_t kMaxKC = 320;

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

}  // namespace

std::shared_ptr<PackedA> pack_conv_weights(const F32GemmKernel& kern, int64_t m, int64_t k,
                                           const float* w) {
  auto p = std::make_shared<PackedA>();
  p->M = m;
  p->K = k;
  p->mr = kern.mr;
  const RowTiles tiles(m, kern.mr);
  const size_t floats = tiles.count * std::max<int64_t>(k, 1) * kern.mr;
  const size_t bytes = (sizeof(float) * floats + 63) / 64 * 64;
  float* data = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (!data) throw std::bad_alloc();
  p->data = std::shared_ptr<float>(data, std::free);
  for (int64_t t = 0; t < tiles.count; ++t) {
    float* dst = data + t * k * kern.mr;
    const float* src = w + tiles.row(t) * k;
    for (int64_t kk = 0; kk < k; ++kk)
      for (int64_t i = 0; i < kern.mr; ++i)
        dst[kk * kern.mr + i] = i < tiles.rows(t) ? src[i * k + kk] : 0.f;
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

void pad_planes(const ConvGeom& g, const float* x, float* dst, int64_t c0, int64_t c1, int64_t ph,
                int64_t pw) {
  const AxisGeom &H = g.h, &W = g.w;
  // Columns [lo, hi) of a padded row come from input columns lo - pad_begin ...
  const int64_t lo = std::min(pw, W.pad_begin), hi = std::max(lo, std::min(pw, W.pad_begin + W.in));
  for (int64_t c = c0; c < c1; ++c) {
    const float* xp = x + c * g.in_plane();
    float* dp = dst + c * ph * pw;
    for (int64_t r = 0; r < ph; ++r, dp += pw) {
      const int64_t ih = r - H.pad_begin;
      if (ih < 0 || ih >= H.in) {
        copy_or_zero(dp, nullptr, pw);
        continue;
      }
      copy_or_zero(dp, nullptr, lo);
      copy_or_zero(dp + lo, xp + ih * W.in + (lo - W.pad_begin), hi - lo);
      copy_or_zero(dp + hi, nullptr, pw - hi);
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
