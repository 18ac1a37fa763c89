// Batched 8-bit matmul on the exact int8 GEMM (qgemm.h): shapes, weight packing, batching.
//
// Shared by QLinearMatMul, MatMulInteger and QGemm. A [..., M, K] arrives per call; B
// [..., K, N] is packed once when constant (the normal case: weights), else per call. A 2-D B
// lets all of A's batch dimensions fold into M, so a whole batch is one GEMM call. The caller
// fills the output-specific part of QGemmArgs (scales, zero point, bias) through a callback.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ops/common.h"
#include "ops/quant_util.h"
#include "sliver/broadcast.h"
#include "sliver/qgemm.h"

namespace sliver::ops::q {

/// B's packed matrices, one per batch index of B (one for a 2-D B).
struct PackedB8 {
  Shape b_shape;  // the original B shape
  std::vector<std::shared_ptr<PackedQ8B>> mats;
};

/// pack_q8_b (qgemm.h) for a row-major K x N B, built for speed (q8_pack_b_rows.cc): what
/// per-run packing of an activation B uses. Same bytes and sums; every panel is marked for the
/// exact kernel, so GEMM results are the same bits.
std::shared_ptr<PackedQ8B> pack_q8_b_rows(int64_t K, int64_t N, const void* b, DType b_type,
                                          int64_t ldb, const int32_t* zero_point,
                                          bool zero_point_per_column);

/// Packs every [K, N] matrix of b (rank >= 1; a 1-D b is [K, 1]). zp holds 1 or N values.
/// per_run: b is an activation packed on every run (the faster packer; same GEMM results).
inline PackedB8 pack_b8(const Tensor& b, const std::vector<int32_t>& zp, bool trans = false,
                        bool per_run = false) {
  if (!is_q8(b.dtype)) fail("B must be uint8 or int8, got ", dtype_name(b.dtype));
  PackedB8 p;
  p.b_shape = b.shape;
  const int64_t rank = b.rank();
  if (rank < 1) fail("B must have rank >= 1, got ", shape_str(b.shape));
  const int64_t rows = rank == 1 ? b.shape[0] : b.shape[rank - 2];
  const int64_t cols = rank == 1 ? 1 : b.shape[rank - 1];
  const int64_t K = trans ? cols : rows, N = trans ? rows : cols;
  const int64_t batches = rank <= 2 ? 1 : shape_numel(Shape(b.shape.begin(), b.shape.end() - 2));
  const bool per_col = zp.size() > 1;
  if (per_col && static_cast<int64_t>(zp.size()) != N)
    fail("B zero point has ", zp.size(), " values but N is ", N);
  const uint8_t* base = static_cast<const uint8_t*>(b.data);
  for (int64_t i = 0; i < batches; ++i) {
    const uint8_t* bi = base + i * K * N;
    p.mats.push_back(per_run && !trans
                         ? pack_q8_b_rows(K, N, bi, b.dtype, cols, zp.data(), per_col)
                         : pack_q8_b(K, N, bi, b.dtype, cols, trans, zp.data(), per_col));
  }
  return p;
}

/// Output shape of numpy matmul(a, b) for ranks >= 1.
inline Shape matmul_shape(const Shape& a, const Shape& b) {
  if (a.empty() || b.empty()) fail("matmul operands must have rank >= 1");
  const int64_t K = a.back();
  const int64_t bk = b.size() == 1 ? b[0] : b[b.size() - 2];
  if (K != bk) fail("matmul: A ", shape_str(a), " and B ", shape_str(b), " disagree on K");
  Shape ab(a.begin(), a.end() - (a.size() >= 2 ? 2 : 1));
  Shape bb(b.begin(), b.end() - (b.size() >= 2 ? 2 : 1));
  Shape out = broadcast_shapes({ab, bb});
  if (a.size() >= 2) out.push_back(a[a.size() - 2]);
  if (b.size() >= 2) out.push_back(b.back());
  return out;
}

/// Fills the output-specific fields of args for output columns [n0, n0 + N) (always n0 = 0 for
/// a matmul); called once per GEMM call.
using ArgsFiller = std::function<void(QGemmArgs& args)>;

/// y = A * B per batch (numpy matmul broadcasting); y is allocated by the caller.
inline void q8_matmul(ThreadPool* pool, const Tensor& a, const PackedB8& pb, int32_t a_zp,
                      Tensor& y, const ArgsFiller& fill) {
  if (!is_q8(a.dtype)) fail("A must be uint8 or int8, got ", dtype_name(a.dtype));
  const Shape& as = a.shape;
  const Shape& bs = pb.b_shape;
  const int64_t K = as.back();
  const int64_t M = as.size() >= 2 ? as[as.size() - 2] : 1;
  const int64_t N = pb.mats[0]->N;
  const size_t c_elem = dtype_size(y.dtype);
  const uint8_t* pa = static_cast<const uint8_t*>(a.data);
  uint8_t* pc = static_cast<uint8_t*>(y.data);
  auto call = [&](const uint8_t* a_ptr, int64_t rows, const PackedQ8B& b, uint8_t* c_ptr) {
    QGemmArgs args;
    args.M = rows;
    args.a = a_ptr;
    args.a_type = a.dtype;
    args.lda = K;
    args.a_zero_point = a_zp;
    args.c = c_ptr;
    args.ldc = N;
    fill(args);
    qgemm(args, b, pool);
  };
  if (y.numel() == 0) return;
  if (pb.mats.size() == 1) {  // 2-D (or 1-D) B: every batch of A is more rows of M
    call(pa, y.numel() / N, *pb.mats[0], pc);  // numel > 0, so N > 0
    return;
  }
  Shape ab(as.begin(), as.end() - (as.size() >= 2 ? 2 : 1));
  Shape bb(bs.begin(), bs.end() - 2);
  const Shape ob = broadcast_shapes({ab, bb});
  const int64_t nb = shape_numel(ob);
  const std::vector<int64_t> sa = broadcast_strides(ab, ob), sb = broadcast_strides(bb, ob);
  for (int64_t i = 0; i < nb; ++i) {
    int64_t ia = 0, ib = 0, r = i;
    for (size_t d = ob.size(); d-- > 0;) {
      const int64_t idx = r % ob[d];
      r /= ob[d];
      ia += idx * sa[d];
      ib += idx * sb[d];
    }
    call(pa + ia * M * K, M, *pb.mats[ib], pc + i * M * N * c_elem);
  }
}

}  // namespace sliver::ops::q
