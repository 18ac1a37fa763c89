// Exact 8-bit GEMM with fused zero-point correction and requantization.
//
//   C[m, n] = sum_k (A[m, k] - za) * (B[k, n] - zb[n])         exact, int32 (mod 2^32)
//
// A (activations, u8 or s8, M x K) arrives per call; B (weights, s8 or u8, K x N or N x K) is
// packed once. Outputs: the int32 sums (MatMulInteger / ConvInteger), u8/s8 requantized
// (QLinear*, see requant.h for the exact float order) or float32 (MatMulIntegerToFloat).
//
// Why it is exact on AVX2 without VNNI. The only 32-multiplies-per-instruction tool is
// vpmaddubsw (u8 x s8 -> s16 pair sums, saturating). Its pair sum u0*w0 + u1*w1 overflows s16
// for u8 activations and large same-signed weights, which real weights have, so the classic
// vpmaddubsw -> vpmaddwd chain is only exact for "7-bit" weights. Both operands are re-centred
// to signed x = a - a_shift, w = b - b_shift (shift 128 for u8, 0 for s8) and, per panel:
//
//  * "exact" kernel (qs8s8_*): x is stored as sign-magnitude, |x| in [0, 128] and a mask
//    s = (x < 0 ? 0xff : 0). With w' = w ^ s (= w, or -w - 1 when x < 0):
//        x * w = |x| * w' + |x| * [x < 0]
//    and |x| * w' pair sums lie in [-32768, 32512]: vpmaddubsw(|x|, w ^ s) never saturates,
//    for every input. The second term depends on the row only, so packing A adds it to the
//    row correction. Cost: one vpxor (and one more broadcast) per vpmaddubsw: the kernel runs
//    at ~85% of the classic chain on Zen 3, a 1024^3 GEMM at ~87% of the fast one.
//  * "fast" kernel (qu8s8_*): the classic chain on u = x + 128 in [0, 255]. Packing B checks
//    every weight pair of a panel (255 * (sum of positive weights) <= 32767 and
//    255 * (sum of negative weights) >= -32768) and marks the panel fast only if no pair can
//    saturate for any u. QGemmPath::automatic uses it exactly there.
//  * "pair fixes": a panel with only a few unsafe pairs (per-tensor weight scales leave one in
//    a few thousand) is made safe at pack time. In each such pair the larger weight gives up
//    the excess over 128 (w' = w - r, |w0' + w1'| = 128), and the panel keeps (k, column, r);
//    a kernel adds sum over fixes of a[k] * r to its accumulators before the epilogue. Both
//    kernels read the fixed panel (the identity x * w = |x| w' + ... holds for any w), so the
//    result is exact either way and the fast chain runs on the panel at a small extra cost.
//
//  * VNNI (qu8s8_*_avx512vnni): vpdpbusd adds the four u8 x s8 products of a group straight into
//    the int32 accumulator, with no s16 intermediate, so the offset-u8 panels are exact on every
//    B panel and the driver runs it everywhere (pair fixes, kept by packing, are added as usual).
//
// Zero points (alpha = a_shift - za, beta[n] = b_shift - zb[n]):
//   C = sum x*w + alpha * colsum_w[n] + beta[n] * rowsum_x[m] + K * alpha * beta[n]
// colsum_w comes from packing B, rowsum_x from packing A; everything wraps mod 2^32, so C is the
// true value whenever that fits in int32 -- always when K <= 33025 (= 2^31 / 255^2), and for
// larger K as long as the true sums fit (the int32 contract of MatMulInteger). Pair sums never
// overflow, so within that contract every result is exact.
//
// Per-row A zero points (dynamic quantization per row) would add a rank-one term
// alpha[m] * (colsum_w[n] + K * beta[n]); the epilogue already takes per-row terms, so only the
// argument and that product are missing.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "sliver/requant.h"
#include "sliver/tensor.h"

namespace sliver {

class ThreadPool;

/// Whether vpmaddubsw's s16 pair sum u0 * w0 + u1 * w1 cannot saturate for any u in [0, 255]:
/// 255 * (sum of the positive weights) <= 32767 and 255 * (sum of the negative ones) >= -32768.
constexpr bool q8_pair_fast_safe(int w0, int w1) {
  const int pos = (w0 > 0 ? w0 : 0) + (w1 > 0 ? w1 : 0);
  const int neg = (w0 < 0 ? w0 : 0) + (w1 < 0 ? w1 : 0);
  return pos <= 32767 / 255 && -neg <= 32768 / 255;
}

// ---------------------------------------------------------------------------------------------
// Packed weights.

/// A weight the fast chain cannot hold in its pair, moved out of the panel (see above): the
/// panel's byte for (k, col) is w - r.
struct Q8PairFix {
  int32_t k;
  int16_t col;  // column within the panel
  int16_t r;    // in [-128, 126]
};

/// B packed once for the q8 kernels: ceil(N/NR) panels; panel p holds columns [p*NR, p*NR+NR)
/// as kp/KR groups of NR*KR bytes (group g: column j's KR bytes at j*KR, so one 32-byte vector
/// covers 8 columns x 4 k), zero padded in k and n. Values are w = b - b_shift (signed).
struct PackedQ8B {
  int64_t K = 0, N = 0;
  int64_t kp = 0;      // K rounded up to KR
  int nr = 0, kr = 0;  // tile shape it was packed for
  DType b_type = DType::i8;
  bool per_column_zero_point = false;
  std::shared_ptr<int8_t> data;          // 64-byte aligned, panels() * kp * nr bytes
  std::vector<int32_t> colsum;           // [panels * nr] sum_k w[k][n] (0 in padding)
  std::vector<int32_t> beta;             // [panels * nr] b_shift - zb[n] (0 in padding)
  std::vector<int64_t> abssum;  // [N] sum_k |b - zb[n]|: bounds the accumulators (empty: unknown)
  std::vector<uint8_t> panel_fast_safe;  // [panels] 1: the u8 x s8 chain cannot saturate
  int64_t fast_panels = 0;               // how many panels are fast-safe
  std::vector<Q8PairFix> fixes;          // every panel's pair fixes, panel by panel, k ascending
  std::vector<int64_t> fix_begin;        // [panels + 1] panel p's fixes; empty: none anywhere

  int64_t panels() const { return (N + nr - 1) / nr; }
  const int8_t* panel(int64_t p) const { return data.get() + p * kp * nr; }
  const Q8PairFix* panel_fixes(int64_t p) const {
    return fix_begin.empty() ? nullptr : fixes.data() + fix_begin[p];
  }
  int64_t panel_fix_count(int64_t p) const {
    return fix_begin.empty() ? 0 : fix_begin[p + 1] - fix_begin[p];
  }
};

/// Packs B (K x N, element (k, n) at b[k * ldb + n]; when trans_b it is N x K, element (k, n) at
/// b[n * ldb + k], the Conv weight layout). b_type is DType::u8 or DType::i8. zero_point holds
/// one value (per tensor) or N values (per column), in b_type's range. K <= 2^24.
std::shared_ptr<PackedQ8B> pack_q8_b(int64_t K, int64_t N, const void* b, DType b_type, int64_t ldb,
                                     bool trans_b, const int32_t* zero_point,
                                     bool zero_point_per_column);

/// Undoes b's pair fixes (its panels then hold the true weights), for weights that only kernels
/// exact on every panel will read (qgemm_native_exact(): VNNI), which would otherwise add the
/// fixes back per tile for nothing. Panels that had fixes are no longer fast-safe.
void q8_drop_pair_fixes(PackedQ8B& b);

// ---------------------------------------------------------------------------------------------
// The product.

/// A rows produced on demand instead of read from memory: an im2col gather, whose full M x K
/// matrix would be K times the image and would stream through memory once more. The driver asks
/// each thread for a few MR-row panels at a time (rows [m0, m0 + rows), K bytes each, written
/// with row stride ld >= K, the bytes past K left alone) just before packing them, so the
/// gathered rows never leave L1.
class QGemmRowSource {
 public:
  virtual ~QGemmRowSource() = default;
  virtual void rows(int64_t m0, int64_t rows, uint8_t* dst, int64_t ld) const = 0;
  /// The indirect form, where a source has one: each row is K / segment_bytes() runs of
  /// segment_bytes() bytes that lie somewhere in memory (a window's taps in the image), and
  /// kernels that can read them in place (Q8TileArgs::a_ind) skip the copy. 0: no such form.
  virtual int64_t segment_bytes() const { return 0; }
  /// Where run s of row m0 + i starts, into ptrs[s * stride + i], for i < count. A row it
  /// cannot point at in place (a window across the image's border) it may write to
  /// spill + i * K, the caller's count * K bytes, which stay untouched while ptrs are in use.
  virtual void segments(int64_t m0, int64_t count, const uint8_t** ptrs, int64_t stride,
                        uint8_t* spill) const {
    (void)m0, (void)count, (void)ptrs, (void)stride, (void)spill;
  }
};

enum class QGemmOutput : int {
  int32 = 0,      // C is int32_t: acc + bias
  quantized = 1,  // C is y_type (u8 / s8): requantize(acc + bias)
  float32 = 2,    // C is float: (acc + bias) * a_scale * b_scale[n] + float_bias[n]
};

/// Kernel choice; only `automatic` and `exact` are exact for every input.
enum class QGemmPath : int {
  automatic = 0,  // fast chain on the panels packing proved safe (on all with VNNI), exact elsewhere
  exact = 1,      // exact kernel everywhere (benchmarks its cost)
  fast = 2,       // saturating chain everywhere: NOT exact for unsafe panels (tests, benchmarks)
};

/// The widest instruction set the kernels may use (tests and benchmarks compare the tiers).
enum class QGemmIsa : int {
  native = 0,  // the best the CPU has (AVX-512 VNNI where usable)
  avx2 = 1,    // AVX2 kernels at most
  scalar = 2,  // the portable kernels
};

struct QGemmOptions {
  QGemmPath path = QGemmPath::automatic;
  QGemmIsa isa = QGemmIsa::native;
};

struct QGemmArgs {
  int64_t M = 0;
  // A: M x K, element (m, k) at a[m * lda + k]; K comes from the packed B.
  const void* a = nullptr;
  DType a_type = DType::u8;  // u8 or i8
  int64_t lda = 0;
  int32_t a_zero_point = 0;  // per tensor, in a_type's range
  const QGemmRowSource* a_rows = nullptr;  // when set, A comes from here (a and lda unused)

  QGemmOutput output = QGemmOutput::int32;
  void* c = nullptr;  // element (m, n) at c[m * ldc + n]; only these M x N elements are written
  int64_t ldc = 0;
  const int32_t* bias = nullptr;  // [N] int32 added to every accumulator (QLinearConv's B)

  // quantized and float32 outputs: scales (b_scale has N values if b_scale_per_column)
  float a_scale = 1.f;
  const float* b_scale = nullptr;
  bool b_scale_per_column = false;
  // quantized output
  float y_scale = 1.f;
  int32_t y_zero_point = 0;
  DType y_type = DType::u8;      // u8 or i8
  int32_t qmin = 0, qmax = 255;  // clamp (type range, or narrower for a fused Relu/Clip)
  RequantRounding rounding = RequantRounding::onnx_reference;
  // float32 output
  const float* float_bias = nullptr;  // [N] or nullptr
};

/// Whether qgemm's default kernels are exact on every weight panel at full speed (VNNI), so that
/// per-channel or full-range weights cost no more than fast-safe ones.
bool qgemm_native_exact();
/// The name of qgemm's default (offset-u8) kernel on this CPU.
const char* qgemm_native_kernel();

/// C = op(A * B) as described above, on `pool` if given (nullable). Throws sliver::Error on
/// inconsistent arguments. The result does not depend on the thread count.
void qgemm(const QGemmArgs& args, const PackedQ8B& b, ThreadPool* pool,
           const QGemmOptions& opt = {});

// ---------------------------------------------------------------------------------------------
// Micro-kernel level (driver, tests, benchmarks).

/// How a kernel wants its A panel (4 rows x KR bytes per k group):
enum class QAFormat : int {
  offset_u8 = 0,  // u = x + 128, 16 bytes per group (the classic chain)
  sign_mag = 1,   // 16 bytes |x| then 16 bytes sign mask per group (the exact kernel)
};

/// Per-call column data for the epilogue, indexed by absolute column n.
struct Q8EpilogueParams {
  QGemmOutput output = QGemmOutput::int32;
  const int32_t* col_term = nullptr;  // [>= N rounded to NR] added to every row
  const int32_t* col_beta = nullptr;  // [..] per-column beta (times row_sum[i]); nullptr if folded
  const float* col_scale = nullptr;   // quantized: multiplier; float32: a_scale * b_scale[n]
  const double* col_scale_f64 = nullptr;  // quantized, onnx_reference: the multiplier as double
  const float* float_bias = nullptr;      // [N] or nullptr
  int32_t y_zero_point = 0, qmin = 0, qmax = 255;
  DType y_type = DType::u8;
  RequantRounding rounding = RequantRounding::onnx_reference;
  // quantized, onnx_reference: requant.h's cheapest form that the caller proved bit-identical for
  // every accumulator of every column (requant_form_for). The AVX2 epilogue runs short_f32 as
  // such (3 instructions per 8 values instead of ~14) and the float64 forms in the full order;
  // the scalar epilogue always runs the full order, which is the same result.
  RequantForm form = RequantForm::full;
};

/// One micro-kernel call: an mr x nc tile of C from one A panel and one B panel, finished in
/// registers. With ep: v = sum + row_term[i] + col_term[n0 + j] (+ col_beta[n0 + j] * row_sum[i])
/// then ep's output conversion; without: the raw int32 sums. Only the mr x nc elements of C are
/// written; the kernel reads MR rows of the A panel (rows >= mr unread) and all NR columns of B.
struct Q8TileArgs {
  int64_t mr = 0, nc = 0;      // 1 <= mr <= MR, 1 <= nc <= NR
  int64_t kgroups = 0;         // K / KR, rounded up
  const uint8_t* a = nullptr;  // A panel in the kernel's QAFormat, 16-byte aligned
  int64_t a_panel_stride = 0;  // bytes from one 4-row A panel to the next (kernels with MR > 4)
  // Direct A (kernels that have it, see qgemm_row_sums_fn): > 0 means `a` is row 0 of the raw
  // rows, row i at a + i * a_row_stride, K a multiple of 4; a_signed then says they are s8
  // codes (the kernel sums (w + 128) * a, the driver's terms take 128 rowsum off).
  int64_t a_row_stride = 0;
  bool a_signed = false;
  // Indirect A (kernels with direct A, u8 codes, no pair fixes): when set, row i's bytes are
  // a_segments runs of a_segment_groups * KR bytes, run s at a_ind[s * a_ind_stride + i]
  // (QGemmRowSource::segments); `a` and a_row_stride are unused.
  const uint8_t* const* a_ind = nullptr;
  int64_t a_ind_stride = 0, a_segments = 0, a_segment_groups = 0;
  // The next B panel's tile on the same rows (its b, fixes, n0, nc, c; the rest as here), for
  // kernels that compute two panels per pass (the VNNI kernel: half the A broadcasts per
  // product); nullptr: this panel only.
  const Q8TileArgs* next = nullptr;
  const int8_t* b = nullptr;   // B panel, 32-byte aligned
  const Q8PairFix* fixes = nullptr;  // the B panel's pair fixes, added before the epilogue
  int64_t nfixes = 0;
  const Q8EpilogueParams* ep = nullptr;
  int64_t n0 = 0;                     // the tile's first column (indexes ep's column arrays)
  const int32_t* row_term = nullptr;  // [mr]
  const int32_t* row_sum = nullptr;   // [mr], read when ep->col_beta
  void* c = nullptr;                  // element (0, 0) of the tile (int32 / y_type / float)
  int64_t ldc = 0;                    // in elements
};
using Q8GemmUkernelFn = void (*)(const Q8TileArgs& t);

struct Q8GemmKernel {
  const char* name;  // <dtype>_gemm_<MR>x<NR>c<KR>_<isa>: file, function and registry key
  int mr, nr, kr;
  const char* isa;
  QAFormat a_format;
  bool exact;  // exact on every B panel (else only on fast-safe ones)
  Q8GemmUkernelFn fn;
};

#define SLIVER_Q8_GEMM_KERNEL(name, mr, nr, kr, isa, a_format, sums) \
  void name(const Q8TileArgs& t);
#include "../../ukernels/q8_gemm/q8_gemm.inc"
#undef SLIVER_Q8_GEMM_KERNEL

/// All compiled q8 kernels in q8_gemm.inc order.
std::vector<const Q8GemmKernel*> q8_gemm_kernels();

/// Packs rows [0, rows) of A (row stride lda, K columns) into MR-row panels for both formats
/// requested (nullptr = skip), zero padding k to kp and repeating the last row past `rows`.
/// Panel p of format f is at dst_f + p * kp * MR * (f == sign_mag ? 2 : 1).
/// rowsum[i] = sum_k x, negsum[i] = sum_k max(-x, 0), for i < rows.
using Q8PackAFn = void (*)(int64_t rows, int64_t K, int64_t kp, const void* a, DType a_type,
                           int64_t lda, uint8_t* dst_u8, uint8_t* dst_sm, int32_t* rowsum,
                           int32_t* negsum);
void q8_pack_a_scalar(int64_t rows, int64_t K, int64_t kp, const void* a, DType a_type, int64_t lda,
                      uint8_t* dst_u8, uint8_t* dst_sm, int32_t* rowsum, int32_t* negsum);
void q8_pack_a_avx2(int64_t rows, int64_t K, int64_t kp, const void* a, DType a_type, int64_t lda,
                    uint8_t* dst_u8, uint8_t* dst_sm, int32_t* rowsum, int32_t* negsum);

/// Row sums of raw A rows for the kernels that read A in place (direct mode): rowsum[i] =
/// sum_k a[i * lda + k] as u8 or s8 codes, i < rows.
using Q8RowSumsFn = void (*)(int64_t rows, int64_t K, const uint8_t* a, int64_t lda, bool a_signed,
                             int32_t* rowsum);
void q8_row_sums_avx512vnni(int64_t rows, int64_t K, const uint8_t* a, int64_t lda, bool a_signed,
                            int32_t* rowsum);

/// The scalar kernels' epilogue: finishes an mr x nc int32 tile acc[i * acc_stride + j] into C
/// as Q8TileArgs describes.
void q8_finish_tile_scalar(const Q8TileArgs& t, const int32_t* acc, int64_t acc_stride);

/// A standalone epilogue for int32 tiles computed elsewhere (the sparse kernels use it), any
/// mr x nc: v = acc[i * acc_stride + j] + row_term[i] + col_term[n0 + j]
/// (+ col_beta[n0 + j] * row_sum[i]), then p's conversion into c[i * ldc + j]. p's column
/// arrays must be readable up to n0 + nc rounded up to 8 (float_bias only up to n0 + nc).
using Q8EpilogueFn = void (*)(const Q8EpilogueParams& p, const int32_t* acc, int64_t acc_stride,
                              int64_t mr, int64_t nc, int64_t n0, const int32_t* row_term,
                              const int32_t* row_sum, void* c, int64_t ldc);
void q8_epilogue_scalar(const Q8EpilogueParams& p, const int32_t* acc, int64_t acc_stride,
                        int64_t mr, int64_t nc, int64_t n0, const int32_t* row_term,
                        const int32_t* row_sum, void* c, int64_t ldc);
void q8_epilogue_avx2(const Q8EpilogueParams& p, const int32_t* acc, int64_t acc_stride, int64_t mr,
                      int64_t nc, int64_t n0, const int32_t* row_term, const int32_t* row_sum,
                      void* c, int64_t ldc);
/// The instance specialised for p's output kind (pick once per call).
Q8EpilogueFn q8_epilogue_scalar_for(const Q8EpilogueParams& p);
Q8EpilogueFn q8_epilogue_avx2_for(const Q8EpilogueParams& p);

}  // namespace sliver
