// FP32 GEMM packing: operand -> k-major panels of R rows (see gemm.h for why panels).
//
// A panel of R "rows" (rows of A, or columns of B) stores element (r, k) at panel[k * R + r], so
// a micro-kernel reads one contiguous R-vector per k. Rows past the end are zero: the kernel may
// compute them (they are never stored) and zeros keep them finite.
#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "sliver/gemm.h"

namespace sliver {
namespace {

constexpr size_t kAlign = 64;
static_assert(kAlign % 32 == 0, "kernels use aligned 32-byte loads on packed B panels");
static_assert(sizeof(float) == 4, "panels are counted in 4-byte floats");

std::shared_ptr<float> alloc_floats(int64_t n) {
  size_t bytes =
      (static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(float) + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, bytes);
  if (!p) throw std::bad_alloc();
  return std::shared_ptr<float>(static_cast<float*>(p), [](float* q) { std::free(q); });
}

// Rows stored as columns (element (r, k) at src[k * ld + r]): each k contributes R contiguous
// floats, a straight copy.
template <int R>
void pack_contiguous(int64_t rows, int64_t kc, const float* __restrict src, int64_t ld,
                     float* __restrict dst, int64_t panel_stride) {
  for (int64_t r0 = 0; r0 < rows; r0 += R, dst += panel_stride) {
    const int64_t n = std::min<int64_t>(R, rows - r0);
    if (n == R) {
      for (int64_t k = 0; k < kc; ++k)
        std::memcpy(dst + k * R, src + k * ld + r0, sizeof(float) * R);
    } else {
      for (int64_t k = 0; k < kc; ++k)
        for (int r = 0; r < R; ++r) dst[k * R + r] = r < n ? src[k * ld + r0 + r] : 0.f;
    }
  }
}

// Row-major rows (element (r, k) at src[r * ld + k]): a transpose. Blocks of 8 k keep every source
// row's cache line in use while the R rows are interleaved.
template <int R>
void pack_transpose(int64_t rows, int64_t kc, const float* __restrict src, int64_t ld,
                    float* __restrict dst, int64_t panel_stride) {
  constexpr int KB = 8;
  for (int64_t r0 = 0; r0 < rows; r0 += R, dst += panel_stride) {
    const int64_t n = std::min<int64_t>(R, rows - r0);
    const float* s = src + r0 * ld;
    int64_t k = 0;
    if (n == R) {
      for (; k + KB <= kc; k += KB) {
        float blk[KB][R];
        for (int r = 0; r < R; ++r)
          for (int kk = 0; kk < KB; ++kk) blk[kk][r] = s[r * ld + k + kk];
        std::memcpy(dst + k * R, blk, sizeof(blk));
      }
    }
    for (; k < kc; ++k)
      for (int r = 0; r < R; ++r) dst[k * R + r] = r < n ? s[r * ld + k] : 0.f;
  }
}

template <int R>
void pack_r(int64_t rows, int64_t kc, const float* src, int64_t ld, bool trans, float* dst,
            int64_t panel_stride) {
  if (trans)
    pack_contiguous<R>(rows, kc, src, ld, dst, panel_stride);
  else
    pack_transpose<R>(rows, kc, src, ld, dst, panel_stride);
}


}  // namespace

namespace detail {

// Asks for the source of rows [rows, rows + n) ahead of time: when the driver packs one panel and
// then computes with it, the next panel's strided source lines arrive during that computation.
void prefetch_panel_source(int64_t rows, int64_t n, int64_t kc, const float* src, int64_t ld,
                           bool trans) {
  constexpr int64_t kLine = 64 / sizeof(float);
  if (trans) {
    for (int64_t k = 0; k < kc; ++k) {
      const float* p = src + k * ld + rows;
      for (int64_t r = 0; r < n; r += kLine) __builtin_prefetch(p + r);
      __builtin_prefetch(p + n - 1);
    }
  } else {
    for (int64_t r = rows; r < rows + n; ++r) {
      const float* p = src + r * ld;
      for (int64_t k = 0; k < kc; k += kLine) __builtin_prefetch(p + k);
      __builtin_prefetch(p + kc - 1);
    }
  }
}

void pack_panels(int R, int64_t rows, int64_t kc, const float* src, int64_t ld, bool trans,
                 float* dst, int64_t panel_stride, int64_t prefetch_next) {
  assert(panel_stride >= kc * R);
  switch (R) {  // one case per tile dimension in f32_gemm.inc
    case 4:
      pack_r<4>(rows, kc, src, ld, trans, dst, panel_stride);
      break;
    case 6:
      pack_r<6>(rows, kc, src, ld, trans, dst, panel_stride);
      break;
    case 8:
      pack_r<8>(rows, kc, src, ld, trans, dst, panel_stride);
      break;
    case 16:
      pack_r<16>(rows, kc, src, ld, trans, dst, panel_stride);
      break;
    case 32:
      pack_r<32>(rows, kc, src, ld, trans, dst, panel_stride);
      break;
    default:
      throw std::logic_error("pack_panels: no packer for panel width " + std::to_string(R));
  }
  if (prefetch_next > 0) prefetch_panel_source(rows, prefetch_next, kc, src, ld, trans);
}

std::shared_ptr<PackedA> pack_a(const F32GemmKernel& kern, int64_t M, int64_t K, const float* A,
                                int64_t lda, bool trans_a) {
  if (M < 0 || K < 0 || (M * K > 0 && (!A || lda < (trans_a ? M : K))))
    throw std::invalid_argument("pack_a: bad shape or stride (M=" + std::to_string(M) +
                                " K=" + std::to_string(K) + " lda=" + std::to_string(lda) + ")");
  auto p = std::make_shared<PackedA>();
  p->M = M;
  p->K = K;
  p->mr = kern.mr;
  const int64_t panels = (M + kern.mr - 1) / kern.mr;
  p->data = alloc_floats(panels * K * kern.mr);
  // A's rows are the panel rows; "trans" in pack_panels terms is the opposite of row-major.
  if (M * K > 0) pack_panels(kern.mr, M, K, A, lda, trans_a, p->data.get(), K * kern.mr);
  return p;
}

std::shared_ptr<PackedB> pack_b(const F32GemmKernel& kern, int64_t K, int64_t N, const float* B,
                                int64_t ldb, bool trans_b) {
  if (N < 0 || K < 0 || (N * K > 0 && (!B || ldb < (trans_b ? K : N))))
    throw std::invalid_argument("pack_b: bad shape or stride (K=" + std::to_string(K) +
                                " N=" + std::to_string(N) + " ldb=" + std::to_string(ldb) + ")");
  auto p = std::make_shared<PackedB>();
  p->K = K;
  p->N = N;
  p->nr = kern.nr;
  const int64_t panels = (N + kern.nr - 1) / kern.nr;
  p->data = alloc_floats(panels * K * kern.nr);
  // B's columns are the panel rows: row-major B (K x N) has them strided, i.e. "trans".
  if (N * K > 0) pack_panels(kern.nr, N, K, B, ldb, !trans_b, p->data.get(), K * kern.nr);
  return p;
}

}  // namespace detail
}  // namespace sliver
