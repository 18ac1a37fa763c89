// 8-bit GEMM driver: kernel choice, per-call corrections, cache blocking and threading.
//
// Loop nest, per task (a block of up to MC rows x a range of B panels):
//   for each block of B panels that fits in L2 (kBBlockBytes)
//    for each MR-row A panel: packed on first use, kSubPanels at a time, while the raw rows of
//     the next group are prefetched; it then stays in L1 for the whole block
//     for each B panel of the block: the kernel computes the tile and finishes it into C
// K is not blocked: a tile accumulates all of K in registers, so the zero-point corrections and
// the requantization run once, on finished sums, and nothing partial is ever stored. Splitting K
// at 1024 (partial tiles in L1) measured 3-5% slower at K = 4096..8192 than streaming whole-K
// panels (B 16*K bytes, A 4*K or 8*K) from L2: the hardware prefetcher keeps up.
//
// Threads: tasks are (row block, panel range) rectangles handed out dynamically; a task whose
// row block is shared with another packs its own copy (O(MC*K), small next to the product).
// Integer sums are exact, so the result is independent of the split.
//
// Kernel selection (isa_usable from dispatch.cc) is made here, per call option; it can move to
// dispatch.cc's table once that grows a q8 entry.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "sliver/cpu.h"
#include "sliver/error.h"
#include "sliver/qgemm.h"
#include "sliver/thread_pool.h"

namespace sliver {
namespace {

constexpr int64_t kMR = 4, kNR = 16, kKR = 4;
// Rows per task: the packed A block (MC rows x K) stays within this. It is re-read once per B
// block; at this size it stays in L2 next to the B block (Zen 3: 512 KiB).
constexpr int64_t kABlockBytes = 256 << 10;
constexpr int64_t kMaxMC = 512;
// A panels packed together, at least (then the next group's rows are prefetched).
constexpr int64_t kSubPanels = 4;
// How many A panels ahead the C lines are prefetched.
constexpr int64_t kPrefetchCPanels = 2;
// B panels visited per A panel: a block this big stays in L2 (see run_task).
constexpr int64_t kBBlockBytes = 192 << 10;
// Below this many multiply-adds a call runs on the calling thread only.
constexpr double kMinParallelMacs = 1 << 18;
// Tasks per thread when work is split (dynamic hand-out evens out uneven tiles).
constexpr int64_t kTasksPerThread = 4;
constexpr size_t kAlign = 64;

constexpr bool kSums_exact = true, kSums_saturating = false;
const Q8GemmKernel kKernels[] = {
#define SLIVER_Q8_GEMM_KERNEL(name, mr, nr, kr, isa, a_format, sums) \
  {#name, mr, nr, kr, #isa, QAFormat::a_format, kSums_##sums, name},
#include "../ukernels/q8_gemm/q8_gemm.inc"
#undef SLIVER_Q8_GEMM_KERNEL
};

struct KernelSet {
  const Q8GemmKernel* fast = nullptr;   // offset_u8 format
  const Q8GemmKernel* exact = nullptr;  // sign_mag format
  Q8PackAFn pack_a = q8_pack_a_scalar;
  // set when `fast` reads raw A rows in place (direct mode) and takes two B panels per call
  Q8RowSumsFn row_sums = nullptr;
};

bool isa_ok(const std::string& isa, QGemmIsa cap) {
  if (isa == "scalar") return true;
  if (cap == QGemmIsa::scalar || (cap == QGemmIsa::avx2 && isa != "avx2")) return false;
  return isa_usable(isa);
}

KernelSet select_kernels(QGemmIsa cap) {
  KernelSet ks;
  for (const Q8GemmKernel& k : kKernels) {
    if (!isa_ok(k.isa, cap)) continue;
    if (k.a_format == QAFormat::offset_u8 && !ks.fast) ks.fast = &k;
    if (k.a_format == QAFormat::sign_mag && !ks.exact) ks.exact = &k;
  }
#if defined(__x86_64__) || defined(_M_X64)
  if (isa_ok("avx2", cap)) {
    ks.pack_a = q8_pack_a_avx2;
  }
  if (ks.fast && std::string(ks.fast->isa) == "avx512vnni") ks.row_sums = q8_row_sums_avx512vnni;
#endif
  return ks;
}

const KernelSet& kernels_for(QGemmIsa cap) {
  static const KernelSet native = select_kernels(QGemmIsa::native),
                         avx2 = select_kernels(QGemmIsa::avx2),
                         scalar = select_kernels(QGemmIsa::scalar);
  return cap == QGemmIsa::scalar ? scalar : cap == QGemmIsa::avx2 ? avx2 : native;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int32_t dtype_shift(DType t) { return t == DType::u8 ? 128 : 0; }
uint32_t u32(int32_t v) { return static_cast<uint32_t>(v); }

// Per-thread buffers, grown on demand and kept for the thread's lifetime.
struct Scratch {
  void* buf = nullptr;
  size_t cap = 0;
  ~Scratch() { std::free(buf); }
  uint8_t* get(size_t bytes) {
    if (bytes > cap) {
      std::free(buf);
      cap = (bytes + kAlign - 1) / kAlign * kAlign;
      buf = std::aligned_alloc(kAlign, cap);
      if (!buf) throw std::bad_alloc();
    }
    return static_cast<uint8_t*>(buf);
  }
};
thread_local Scratch t_scratch;

struct Problem {
  const QGemmArgs* args;
  const PackedQ8B* b;
  const KernelSet* ks;
  Q8EpilogueParams ep;
  std::vector<uint8_t> use_fast;  // per panel
  bool need_u8 = false, need_sm = false;
  // Direct mode: every panel on the fast kernel, which reads the raw A rows (or the gathered
  // ones) in place: no packing, row sums only where a term needs them.
  bool direct = false, need_rowsum = true;
  // Indirect (direct mode on a row source with runs, QGemmRowSource::segments): the kernel reads
  // the runs in place through a pointer table per row group; only rows the source cannot point
  // at (windows across the image's edge) are gathered.
  int64_t seg_bytes = 0;
  int64_t group = 1;       // A panels visited together: a multiple of both kernels' MR / kMR
  int64_t sub_panels = 1;  // A panels packed together: a multiple of group
  int64_t mc = 0;
  int32_t beta_tensor = 0;  // folded into the row terms when B's zero point is per tensor
  size_t c_elem = 4;
};

// Computes C rows [m0, m1) x panels [p0, p1).
void run_task(const Problem& P, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  const QGemmArgs& A = *P.args;
  const PackedQ8B& B = *P.b;
  const int64_t kp = B.kp, kgroups = kp / kKR, rows = m1 - m0, panels_m = ceil_div(rows, kMR);
  const size_t u8_bytes = P.need_u8 ? panels_m * kp * kMR : 0;
  const size_t sm_bytes = P.need_sm ? panels_m * kp * kMR * 2 : 0;
  const size_t row_bytes = panels_m * kMR * sizeof(int32_t);
  // direct mode keeps every gathered row of the task (B blocks after the first re-read them)
  const size_t gather_bytes =
      A.a_rows ? (P.direct ? panels_m * kp : P.sub_panels * B.K) * kMR : 0;
  // indirect: every row group's pointer table, built on the first B block, kept for the others
  const int64_t segs = P.seg_bytes ? B.K / P.seg_bytes : 0, ind_stride = P.ks->fast->mr;
  const int64_t ind_groups = ceil_div(rows, ind_stride);
  const size_t table_bytes = ind_groups * segs * ind_stride * sizeof(const uint8_t*);
  auto round = [](size_t n) { return (n + kAlign - 1) / kAlign * kAlign; };
  uint8_t* base = t_scratch.get(round(u8_bytes) + round(sm_bytes) + 4 * round(row_bytes) +
                                round(gather_bytes) + table_bytes);
  uint8_t* a_u8 = P.need_u8 ? base : nullptr;
  uint8_t* a_sm = P.need_sm ? base + round(u8_bytes) : nullptr;
  int32_t* rowsum = reinterpret_cast<int32_t*>(base + round(u8_bytes) + round(sm_bytes));
  int32_t* negsum = rowsum + round(row_bytes) / sizeof(int32_t);
  int32_t* term_fast = negsum + round(row_bytes) / sizeof(int32_t);
  int32_t* term_exact = term_fast + round(row_bytes) / sizeof(int32_t);
  uint8_t* gathered = reinterpret_cast<uint8_t*>(term_exact + round(row_bytes) / sizeof(int32_t));
  const uint8_t** table = reinterpret_cast<const uint8_t**>(gathered + round(gather_bytes));
  const uint8_t** table_now = table;  // indirect: the current row group's

  // A is packed sub_panels panels at a time, just before its first use, while the raw rows of the
  // next group are prefetched: the (usually cold) reads of A overlap the kernels. A row source
  // fills `gathered` with the group's rows first (its reads are its own to schedule).
  const uint8_t* a = A.a_rows ? nullptr : static_cast<const uint8_t*>(A.a) + m0 * A.lda;
  const int64_t chunk_rows = P.sub_panels * kMR;
  auto prefetch_rows = [&](int64_t r0) {
    if (A.a_rows) return;
    const int64_t r1 = std::min(rows, r0 + chunk_rows);
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t k = 0; k < B.K; k += 64) __builtin_prefetch(a + r * A.lda + k);
  };
  // direct mode: where row 0 of the task's A is and its row stride
  const uint8_t* a_rows0 = a ? a : gathered;
  const int64_t a_stride = a ? std::max(A.lda, B.K) : kp;
  const bool a_signed = A.a_type == DType::i8;
  auto direct_sub = [&](int64_t r0) {  // rows [r0, r0 + chunk_rows): sums and terms
    const int64_t n = std::min(rows - r0, chunk_rows);
    if (!a && !P.seg_bytes) {
      // rows of kp bytes: the kernel reads whole 4-byte groups, the padding meets zero weights
      uint8_t* dst = gathered + r0 * a_stride;
      A.a_rows->rows(m0 + r0, n, dst, a_stride);
      if (kp > B.K)
        for (int64_t i = 0; i < n; ++i) std::memset(dst + i * kp + B.K, 0, kp - B.K);
    }
    if (P.need_rowsum) {
      P.ks->row_sums(n, B.K, a_rows0 + r0 * a_stride, a_stride, a_signed, rowsum + r0);
      // rowsum is of x = a - a_shift; an s8 tile holds sum (w + 128) a = sum w x + 128 rowsum
      const uint32_t shift_sum = a_signed ? 0u : 128u * u32(static_cast<int32_t>(B.K));
      for (int64_t i = r0; i < r0 + n; ++i) {
        rowsum[i] = static_cast<int32_t>(u32(rowsum[i]) - shift_sum);
        const uint32_t s8_term = a_signed ? 128u * u32(rowsum[i]) : 0u;
        term_fast[i] = static_cast<int32_t>(u32(P.beta_tensor) * u32(rowsum[i]) - s8_term);
      }
    } else {
      std::fill(term_fast + r0, term_fast + r0 + n, 0);
    }
    prefetch_rows(r0 + n);
  };
  auto pack_sub = [&](int64_t r0) {  // rows [r0, r0 + chunk_rows), r0 a multiple of it
    if (P.direct) return direct_sub(r0);
    const int64_t ip = r0 / kMR, n = std::min(rows - r0, chunk_rows);
    const uint8_t* src = a ? a + r0 * A.lda : gathered;
    if (!a) A.a_rows->rows(m0 + r0, n, gathered, B.K);
    P.ks->pack_a(n, B.K, kp, src, A.a_type, a ? A.lda : B.K, a_u8 ? a_u8 + ip * kp * kMR : nullptr,
                 a_sm ? a_sm + ip * kp * kMR * 2 : nullptr, rowsum + r0, negsum + r0);
    // sum_k x*w = fast tile - 128 colsum (in col_term) = exact tile + negsum
    for (int64_t i = r0; i < r0 + n; ++i) {
      const uint32_t beta_row = u32(P.beta_tensor) * u32(rowsum[i]);
      term_fast[i] = static_cast<int32_t>(beta_row);
      term_exact[i] = static_cast<int32_t>(beta_row + u32(negsum[i]));
    }
    prefetch_rows(r0 + n);
  };
  int64_t prepared = 0;  // rows [0, prepared) are packed (or gathered and summed)
  auto prepare = [&](int64_t upto) {
    for (; prepared < upto; prepared += chunk_rows) pack_sub(prepared);
  };

  // Row groups: the rows one pass over a B block visits together. Packed A: P.group panels
  // (one or more kernel calls each). Direct mode: one call per group, the task's rows split as
  // evenly as the kernel's MR allows: a 49-row product runs 10+10+10+10+9, not 12+12+12+12+1,
  // whose one-row call streams the whole block from L2 for a 12th of the products.
  const int64_t group_rows = P.group * kMR;
  const int64_t groups = P.direct ? ceil_div(rows, P.ks->fast->mr) : ceil_div(rows, group_rows);
  auto group_begin = [&](int64_t j) {
    return P.direct ? j * rows / groups : std::min(rows, j * group_rows);
  };

  uint8_t* c = static_cast<uint8_t*>(A.c);
  Q8TileArgs t;
  t.kgroups = kgroups;
  t.ep = &P.ep;
  t.ldc = A.ldc;
  Q8TileArgs t2 = t;  // the second panel of a pair (Q8TileArgs::next)
  auto set_panel = [&](Q8TileArgs& u, int64_t p) {
    u.b = B.panel(p);
    u.fixes = B.panel_fixes(p);
    u.nfixes = B.panel_fix_count(p);
    u.n0 = p * kNR;
    u.nc = std::min(kNR, B.N - u.n0);
  };
  // B panel p (and p + 1 when `two`) against the rows [r0, r1) of a group: one call per kernel
  // MR of them.
  auto tiles_at = [&](int64_t p, int64_t r0, int64_t r1, bool two) {
    const bool fast = P.use_fast[p] != 0;
    const Q8GemmKernel& k = fast ? *P.ks->fast : *P.ks->exact;
    t.a_panel_stride = kp * kMR * (fast ? 1 : 2);
    t.a_row_stride = P.direct ? a_stride : 0;
    t.a_signed = a_signed;
    if (P.seg_bytes) {
      t.a_ind_stride = ind_stride;
      t.a_segments = segs;
      t.a_segment_groups = P.seg_bytes / kKR;
    }
    set_panel(t, p);
    t.next = nullptr;
    if (two) {  // field by field: a whole-struct copy here stalled on the stores just made
      t2.a_panel_stride = t.a_panel_stride;
      t2.a_row_stride = t.a_row_stride;
      t2.a_signed = t.a_signed;
      set_panel(t2, p + 1);
      t.next = &t2;
    }
    for (int64_t i0 = r0; i0 < r1; i0 += k.mr) {
      t.a = P.direct ? a_rows0 + i0 * a_stride
                     : (fast ? a_u8 : a_sm) + i0 / kMR * t.a_panel_stride;
      t.mr = std::min<int64_t>(k.mr, r1 - i0);
      t.a_ind = P.seg_bytes ? table_now + (i0 - r0) : nullptr;
      t.row_term = (fast ? term_fast : term_exact) + i0;
      t.row_sum = rowsum + i0;
      t.c = c + ((m0 + i0) * A.ldc + t.n0) * P.c_elem;
      if (two) {
        t2.a = t.a;
        t2.a_ind = t.a_ind;
        t2.mr = t.mr;
        t2.row_term = t.row_term;
        t2.row_sum = t.row_sum;
        t2.c = c + ((m0 + i0) * A.ldc + t2.n0) * P.c_elem;
      }
      k.fn(t);
    }
  };

  // B panels in blocks that stay in L2; each A group (L1) meets a whole block, so C is written
  // in runs of block-width rows rather than one line per row (a power-of-two ldc would pile
  // those lines into a few cache sets).
  int64_t block = std::max<int64_t>(1, kBBlockBytes / std::max<int64_t>(1, kp * kNR));
  // Two-panel kernels: whole pairs (an odd block's single-panel calls cost 196x256x2304 8%).
  if (P.ks->row_sums) block = std::max<int64_t>(2, block - block % 2);
  // Asks for the C lines a group a few groups ahead will write (its rows x this block's
  // columns): that many kernel calls hide the misses the epilogue's stores would wait for.
  auto prefetch_c = [&](int64_t j, int64_t pb, int64_t pe) {
    if (j >= groups) return;
    const int64_t n0 = pb * kNR, bytes = (std::min(B.N, pe * kNR) - n0) * P.c_elem;
    for (int64_t i = group_begin(j); i < group_begin(j + 1); ++i) {
      const uint8_t* row = c + ((m0 + i) * A.ldc + n0) * P.c_elem;
      for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(row + o, 1);
      __builtin_prefetch(row + bytes - 1, 1);
    }
  };
  const int64_t ahead = ceil_div(kPrefetchCPanels * kMR, group_rows);
  for (int64_t pb = p0; pb < p1; pb += block) {
    const int64_t pe = std::min(p1, pb + block);
    for (int64_t j = 0; j < ahead; ++j) prefetch_c(j, pb, pe);
    for (int64_t j = 0; j < groups; ++j) {
      const int64_t r0 = group_begin(j), r1 = group_begin(j + 1);
      prepare(r1);
      if (P.seg_bytes) {
        table_now = table + j * segs * ind_stride;
        if (pb == p0)  // rows that must be gathered go where direct mode gathers them
          A.a_rows->segments(m0 + r0, r1 - r0, table_now, ind_stride, gathered + r0 * kp);
      }
      prefetch_c(j + ahead, pb, pe);
      for (int64_t p = pb; p < pe;) {
        const bool two = P.ks->row_sums && p + 1 < pe && P.use_fast[p] && P.use_fast[p + 1];
        tiles_at(p, r0, r1, two);
        p += two ? 2 : 1;
      }
    }
  }
}

void check_args(const QGemmArgs& A, const PackedQ8B& B) {
  SLIVER_CHECK(A.M >= 0, "qgemm: M=", A.M);
  SLIVER_CHECK(B.nr == kNR && B.kr == kKR, "qgemm: B packed for ", B.nr, "x", B.kr);
  SLIVER_CHECK(A.a_type == DType::u8 || A.a_type == DType::i8, "qgemm: A must be u8 or i8, got ",
               dtype_name(A.a_type));
  const int32_t alo = A.a_type == DType::u8 ? 0 : -128, ahi = alo + 255;
  SLIVER_CHECK(A.a_zero_point >= alo && A.a_zero_point <= ahi, "qgemm: A zero point ",
               A.a_zero_point, " out of range");
  SLIVER_CHECK(A.M * B.K == 0 || A.a != nullptr || A.a_rows != nullptr, "qgemm: null A");
  SLIVER_CHECK(A.M <= 1 || A.a_rows || A.lda >= B.K, "qgemm: lda=", A.lda, " < K=", B.K);
  SLIVER_CHECK(A.M * B.N == 0 || A.c != nullptr, "qgemm: null C");
  SLIVER_CHECK(A.M <= 1 || A.ldc >= B.N, "qgemm: ldc=", A.ldc, " < N=", B.N);
  if (A.output != QGemmOutput::int32)
    SLIVER_CHECK(A.b_scale != nullptr, "qgemm: b_scale needed for this output");
  if (A.output == QGemmOutput::quantized) {
    SLIVER_CHECK(A.y_type == DType::u8 || A.y_type == DType::i8, "qgemm: y must be u8 or i8");
    const int32_t ylo = A.y_type == DType::u8 ? 0 : -128, yhi = ylo + 255;
    SLIVER_CHECK(A.y_zero_point >= ylo && A.y_zero_point <= yhi, "qgemm: y zero point ",
                 A.y_zero_point, " out of range");
    SLIVER_CHECK(ylo <= A.qmin && A.qmin <= A.qmax && A.qmax <= yhi, "qgemm: clamp [", A.qmin, ", ",
                 A.qmax, "] outside the output type");
  }
}

}  // namespace

std::vector<const Q8GemmKernel*> q8_gemm_kernels() {
  std::vector<const Q8GemmKernel*> v;
  for (const Q8GemmKernel& k : kKernels) v.push_back(&k);
  return v;
}

bool qgemm_native_exact() { return kernels_for(QGemmIsa::native).fast->exact; }
const char* qgemm_native_kernel() { return kernels_for(QGemmIsa::native).fast->name; }

void qgemm(const QGemmArgs& args, const PackedQ8B& b, ThreadPool* pool, const QGemmOptions& opt) {
  check_args(args, b);
  const int64_t M = args.M, N = b.N, K = b.K;
  if (M == 0 || N == 0) return;

  Problem P;
  P.args = &args;
  P.b = &b;
  P.ks = &kernels_for(opt.isa);
  P.group = std::max(P.ks->fast->mr, P.ks->exact->mr) / kMR;
  SLIVER_CHECK(P.group % (P.ks->fast->mr / kMR) == 0 && P.group % (P.ks->exact->mr / kMR) == 0,
               "qgemm: kernel row counts ", P.ks->fast->mr, " and ", P.ks->exact->mr);
  P.sub_panels = ceil_div(kSubPanels, P.group) * P.group;
  const int64_t panels = b.panels(), np = panels * kNR;
  P.use_fast.resize(panels);
  for (int64_t p = 0; p < panels; ++p) {
    P.use_fast[p] = opt.path == QGemmPath::fast ||
                    (opt.path == QGemmPath::automatic && (b.panel_fast_safe[p] || P.ks->fast->exact));
    (P.use_fast[p] ? P.need_u8 : P.need_sm) = true;
  }
  // Direct mode needs whole 4-byte groups in every row (no read past a row's end); gathered
  // rows get them (kp bytes each).
  P.direct = P.ks->row_sums && !P.need_sm && K > 0 && (K % kKR == 0 || args.a_rows);
  const bool direct_s8 = P.direct && args.a_type == DType::i8;
  if (P.direct) P.need_u8 = false;

  // Column terms (see qgemm.h): alpha*colsum + K*alpha*beta + bias, minus 128*colsum on fast
  // panels, whose tiles hold sum (x + 128) * w.
  const int32_t alpha = dtype_shift(args.a_type) - args.a_zero_point;
  std::vector<int32_t> col_term(np), col_beta;
  std::vector<float> col_scale;
  std::vector<double> col_scale_f64;
  for (int64_t n = 0; n < np; ++n) {
    uint32_t t =
        u32(alpha) * u32(b.colsum[n]) + u32(static_cast<int32_t>(K)) * u32(alpha) * u32(b.beta[n]);
    if (n < N && args.bias) t += u32(args.bias[n]);
    if (P.use_fast[n / kNR] && !direct_s8) t -= 128u * u32(b.colsum[n]);
    col_term[n] = static_cast<int32_t>(t);
  }
  // Per-column zero points that are all the same (per-channel scales with symmetric weights)
  // are one per-tensor beta: no per-column product, and no row sums where that beta is 0.
  const bool beta_per_column =
      b.per_column_zero_point &&
      !std::all_of(b.beta.begin(), b.beta.begin() + N, [&](int32_t v) { return v == b.beta[0]; });
  if (beta_per_column) {
    col_beta = b.beta;
    P.ep.col_beta = col_beta.data();
  } else {
    P.beta_tensor = b.beta[0];
  }
  P.need_rowsum = !P.direct || direct_s8 || beta_per_column || P.beta_tensor != 0;
  if (P.direct && !P.need_rowsum && args.a_rows && b.fix_begin.empty()) {
    const int64_t seg = args.a_rows->segment_bytes();
    if (seg > 0 && seg % kKR == 0 && K % seg == 0) P.seg_bytes = seg;
  }
  P.ep.output = args.output;
  P.ep.col_term = col_term.data();
  if (args.output != QGemmOutput::int32) {
    col_scale.assign(np, 0.f);
    for (int64_t n = 0; n < N; ++n) {
      const float bs = args.b_scale[args.b_scale_per_column ? n : 0];
      col_scale[n] = args.output == QGemmOutput::quantized
                         ? requant_multiplier(args.a_scale, bs, args.y_scale)
                         : args.a_scale * bs;
    }
    P.ep.col_scale = col_scale.data();
    col_scale_f64.assign(col_scale.begin(), col_scale.end());
    P.ep.col_scale_f64 = col_scale_f64.data();
  }
  if (args.output == QGemmOutput::quantized &&
      args.rounding == RequantRounding::onnx_reference && !b.abssum.empty()) {
    // |acc + bias| <= max|a - za| * sum_k |b - zb| + |bias| bounds every requantized value.
    P.ep.form = requant_form_for_columns(
        N, b.abssum.data(), args.bias,
        max_centered_code(args.a_type == DType::i8, args.a_zero_point), col_scale.data(),
        args.y_zero_point);
  }
  P.ep.float_bias = args.float_bias;
  P.ep.y_zero_point = args.y_zero_point;
  P.ep.qmin = args.qmin;
  P.ep.qmax = args.qmax;
  P.ep.y_type = args.y_type;
  P.ep.rounding = args.rounding;
  P.c_elem = args.output == QGemmOutput::quantized ? 1 : 4;

  const int64_t a_row_bytes = std::max<int64_t>(
      1, P.direct ? b.kp : b.kp * ((P.need_u8 ? 1 : 0) + (P.need_sm ? 2 : 0)));
  const int64_t mc_unit = kMR * P.group;
  P.mc = std::clamp<int64_t>(kABlockBytes / a_row_bytes / mc_unit * mc_unit, mc_unit,
                             kMaxMC / mc_unit * mc_unit);

  const int threads = pool ? pool->num_threads() : 1;
  const double macs = static_cast<double>(M) * N * std::max<int64_t>(K, 1);
  const int64_t m_blocks = ceil_div(M, P.mc);
  // Packed A splits at whole groups of panels; direct mode evenly (its calls take any rows).
  auto block_begin = [&](int64_t i) { return P.direct ? i * M / m_blocks : std::min(M, i * P.mc); };
  if (threads <= 1 || macs < kMinParallelMacs) {
    for (int64_t i = 0; i < m_blocks; ++i) run_task(P, block_begin(i), block_begin(i + 1), 0, panels);
    return;
  }
  // Enough tasks for dynamic balance; split panels only when rows alone are too few.
  const int64_t want = threads * kTasksPerThread;
  const int64_t n_chunks = std::clamp<int64_t>(ceil_div(want, m_blocks), 1, panels);
  const int64_t chunk = ceil_div(panels, n_chunks);
  const int64_t n_tasks = ceil_div(panels, chunk);
  pool->parallel_tasks(m_blocks * n_tasks, [&](int64_t t) {
    const int64_t i = t / n_tasks, j = t % n_tasks;
    run_task(P, block_begin(i), block_begin(i + 1), j * chunk, std::min(panels, (j + 1) * chunk));
  });
}

// The fixes undone: panel bytes back to the true weights, panels with fixes no longer fast-safe
// for the saturating chain (exact kernels do not care).
void q8_drop_pair_fixes(PackedQ8B& b) {
  if (b.fix_begin.empty()) return;
  for (int64_t p = 0; p < b.panels(); ++p) {
    if (b.panel_fix_count(p) == 0) continue;
    int8_t* panel = b.data.get() + p * b.kp * b.nr;
    for (int64_t f = b.fix_begin[p]; f < b.fix_begin[p + 1]; ++f) {
      const Q8PairFix& fx = b.fixes[f];
      int8_t& w = panel[fx.k / b.kr * b.nr * b.kr + fx.col * b.kr + fx.k % b.kr];
      w = static_cast<int8_t>(w + fx.r);
    }
    if (b.panel_fast_safe[p]) {
      b.panel_fast_safe[p] = 0;
      --b.fast_panels;
    }
  }
  b.fixes.clear();
  b.fix_begin.clear();
}

}  // namespace sliver
