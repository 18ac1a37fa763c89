// FP32 GEMM: C = epilogue(A * B + beta_c * C).
//
// The engine is GotoBLAS/BLIS-shaped. A micro-kernel keeps an MR x NR tile of C in registers and
// runs a whole K block of rank-1 updates on it, reading "panels": A as MR-row strips stored
// k-major (a[k*MR + i]), B as NR-column strips stored k-major (b[k*NR + j]). Panels make every load
// of the inner loop sequential and aligned; building them ("packing") costs one pass over the
// operand, so constant weights are packed once (pack_a / pack_b) and activations are either read
// in place (row-major A, or row-major B when M is tiny) or packed per cache block into per-thread
// scratch. The epilogue (bias, activation, residual add, a second activation) runs on each tile
// while it is still in registers, so a fused Conv/Gemm+Bias+Relu+Add+Relu writes C once.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>

namespace sliver {

class ThreadPool;

/// Activation functions, with ONNX semantics; parameters come from Epilogue alpha/beta.
enum class Act : int {
  none,
  relu,
  clip,          // min(max(x, alpha), beta)
  leaky_relu,    // x >= 0 ? x : alpha * x
  sigmoid,       // 1 / (1 + exp(-x))
  hard_sigmoid,  // max(0, min(1, alpha * x + beta))          (ONNX defaults 0.2, 0.5)
  hard_swish,    // x * max(0, min(1, alpha * x + beta))      (ONNX HardSwish: 1/6, 0.5)
  tanh,
  gelu_erf,   // 0.5 x (1 + erf(x / sqrt 2))
  gelu_tanh,  // 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
};

/// Work done on each output tile after the dot products, in this order:
///   acc (+ beta_c * C) + bias -> act -> + residual -> post_act
struct Epilogue {
  const float* bias = nullptr;  // bias[n] per output column, or bias[m] if bias_per_row
  bool bias_per_row = false;
  Act act = Act::none;
  float alpha = 0, beta = 0;
  const float* residual = nullptr;  // C[m][n] += residual[m * ld_residual + n]; must not overlap C
  int64_t ld_residual = 0;
  Act post_act = Act::none;  // e.g. the Relu after a residual Add
  float post_alpha = 0, post_beta = 0;
};

/// Reference activation (also the scalar kernels' implementation).
inline float apply_act(Act act, float x, float alpha, float beta) {
  switch (act) {
    case Act::none:
      return x;
    case Act::relu:
      return x > 0.f ? x : 0.f;
    case Act::clip:
      return std::fmin(std::fmax(x, alpha), beta);
    case Act::leaky_relu:
      return x >= 0.f ? x : alpha * x;
    case Act::sigmoid:
      return 1.f / (1.f + std::exp(-x));
    case Act::hard_sigmoid:
      return std::fmax(0.f, std::fmin(1.f, alpha * x + beta));
    case Act::hard_swish:
      return x * std::fmax(0.f, std::fmin(1.f, alpha * x + beta));
    case Act::tanh:
      return std::tanh(x);
    case Act::gelu_erf:
      return 0.5f * x * (1.f + std::erf(x * 0.70710678118654752f));
    case Act::gelu_tanh: {
      const float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
      return 0.5f * x * (1.f + std::tanh(u));
    }
  }
  return x;
}

// ---------------------------------------------------------------------------------------------
// Micro-kernel level (used by the driver, dispatch and tests).

/// One call computes a row of `panels` tiles of C, side by side: mr rows (1 <= mr <= MR) by
/// NR columns each, except the last, which has nr (1 <= nr <= NR). Tile q reads B at
/// b + q * b_panel_stride and writes C at c + q * NR. The kernel reads only mr rows of A and
/// touches only the mr x ((panels - 1) * NR + nr) elements of C (no out-of-bounds access on C,
/// bias or residual), but may read all NR columns of each B row.
struct F32GemmUkernelArgs {
  int64_t mr, nr, kc;  // kc may be 0 (epilogue only)
  int64_t panels;      // >= 1; more than one amortises the call when K blocks are short
  // A: a_row_stride == 0 -> packed panel, element (i, k) at a[k * MR + i];
  //    otherwise row-major, element (i, k) at a[i * a_row_stride + k].
  const float* a;
  int64_t a_row_stride;
  // B: element (k, j) at b[k * b_k_stride + j], all NR columns readable. A packed panel has
  // b_k_stride == NR and 64-byte alignment (kernels then use aligned loads).
  const float* b;
  int64_t b_k_stride;
  int64_t b_panel_stride;  // floats from one tile's B to the next (panels > 1)
  float* c;
  int64_t ldc;
  float c_scale;          // 0: C is write-only; else acc += c_scale * C (1 between K blocks)
  const Epilogue* ep;     // nullptr: store the plain sums (not the last K block)
  const float* bias;      // ep->bias advanced to the first tile's first row or column (read iff ep)
  const float* residual;  // ep->residual advanced to the first tile's (0, 0) (read iff ep)
};
using F32GemmUkernelFn = void (*)(const F32GemmUkernelArgs& args);

/// A micro-kernel as listed in f32_gemm.inc.
struct F32GemmKernel {
  const char* name;  // f32_gemm_<MR>x<NR>_<isa>: file, function and registry key
  int mr, nr;
  const char* isa;
  F32GemmUkernelFn fn;
};

// Declarations of every micro-kernel function (only those built for this architecture are defined).
#define SLIVER_F32_GEMM_KERNEL(name, mr, nr, isa) void name(const F32GemmUkernelArgs& args);
#include "../../ukernels/f32_gemm/f32_gemm.inc"
#undef SLIVER_F32_GEMM_KERNEL

// ---------------------------------------------------------------------------------------------
// Packed operands.

/// A packed for one micro-kernel tile shape: ceil(M/MR) panels of K*MR floats, zero padded.
/// (Conv weights may instead be K-block-major, kc > 0: see pack_conv_weights and
/// pack_conv_weights_t; panel() and the GEMM driver then do not apply.)
struct PackedA {
  int64_t M = 0, K = 0;
  int mr = 0;                   // the MR it was packed for
  std::shared_ptr<float> data;  // 64-byte aligned
  int64_t kc = 0;               // 0: panels of all K; else K blocks of kc rows, each all panels
  const float* panel(int64_t m0) const { return data.get() + (m0 / mr) * K * mr; }
};

/// B packed for one micro-kernel tile shape: ceil(N/NR) panels of K*NR floats, zero padded.
/// (kc > 0: K-block-major, as PackedA.)
struct PackedB {
  int64_t K = 0, N = 0;
  int nr = 0;                   // the NR it was packed for
  std::shared_ptr<float> data;  // 64-byte aligned
  int64_t kc = 0;               // 0: panels of all K; else K blocks of kc rows, each all panels
  const float* panel(int64_t n0) const { return data.get() + (n0 / nr) * K * nr; }
};

/// Packs A (M x K; stored K x M when trans_a) for the selected micro-kernel.
std::shared_ptr<PackedA> pack_a(int64_t M, int64_t K, const float* A, int64_t lda, bool trans_a);
/// Packs B (K x N; stored N x K when trans_b) for the selected micro-kernel.
std::shared_ptr<PackedB> pack_b(int64_t K, int64_t N, const float* B, int64_t ldb, bool trans_b);

struct GemmOperandA {
  const float* data = nullptr;  // unused when packed
  int64_t ld = 0;
  bool trans = false;
  const PackedA* packed = nullptr;  // non-null -> use it
};
struct GemmOperandB {
  const float* data = nullptr;
  int64_t ld = 0;
  bool trans = false;
  const PackedB* packed = nullptr;
};

/// C (M x N, row stride ldc) = epilogue(A * B + beta_c * C), on `pool` if given (nullable).
/// C is not read when beta_c == 0. K == 0 gives epilogue(beta_c * C). The result does not depend
/// on the number of threads (work is split over M and N only, tiles always start at multiples of
/// MR and NR). Throws std::invalid_argument on inconsistent arguments.
void f32_gemm(int64_t M, int64_t N, int64_t K, const GemmOperandA& a, const GemmOperandB& b,
              float* C, int64_t ldc, const Epilogue& ep, ThreadPool* pool, float beta_c = 0.f);

namespace detail {
// The same with an explicit micro-kernel (tests and benchmarks compare kernels this way); packed
// operands must have been packed for its tile shape.
std::shared_ptr<PackedA> pack_a(const F32GemmKernel& k, int64_t M, int64_t K, const float* A,
                                int64_t lda, bool trans_a);
std::shared_ptr<PackedB> pack_b(const F32GemmKernel& k, int64_t K, int64_t N, const float* B,
                                int64_t ldb, bool trans_b);
void f32_gemm(const F32GemmKernel& k, int64_t M, int64_t N, int64_t K, const GemmOperandA& a,
              const GemmOperandB& b, float* C, int64_t ldc, const Epilogue& ep, ThreadPool* pool,
              float beta_c);

// Panel packer (f32_pack.cc): writes ceil(rows/R) panels of kc * R floats for rows [0, rows)
// and k in [0, kc), zero padded to R rows, panel p at dst + p * panel_stride. src points at
// element (0, 0); "trans" means element (r, k) is at src[k * ld + r] instead of src[r * ld + k].
// prefetch_next > 0 also prefetches the source of the next prefetch_next rows.
void pack_panels(int R, int64_t rows, int64_t kc, const float* src, int64_t ld, bool trans,
                 float* dst, int64_t panel_stride, int64_t prefetch_next = 0);
// Prefetches the source of panel rows [rows, rows + n) (same layout arguments as pack_panels):
// strided sources are kc separate streams, more than the hardware prefetchers follow. Also used
// by the sparse driver for the next tile of a 1x1 conv's input planes.
void prefetch_panel_source(int64_t rows, int64_t n, int64_t kc, const float* src, int64_t ld,
                           bool trans);
}  // namespace detail

}  // namespace sliver
