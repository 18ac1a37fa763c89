// Numpy broadcasting as loops over contiguous runs.
//
// Elementwise kernels are fast on long runs where every operand either advances one element at a
// time or stays put (a scalar). Broadcasting only decides, per output dimension, whether an
// operand advances (stride = its own element stride) or repeats (stride 0). Adjacent dimensions
// whose strides chain for every operand can be merged, so [N,C,H,W] + [1,C,1,1] becomes
// [N, C, H*W] with the channel operand's strides [0, 1, 0]: runs of H*W where it is a scalar.
// After merging, the innermost dimension is the run, and each operand's stride in it is 0 or 1,
// which is exactly what the vector micro-kernels (vector-vector, vector-scalar) take.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "sliver/error.h"
#include "sliver/tensor.h"

namespace sliver {

/// The numpy-broadcast shape of `shapes`, or a failure naming them.
inline Shape broadcast_shapes(const std::vector<Shape>& shapes) {
  size_t rank = 0;
  for (const Shape& s : shapes) rank = std::max(rank, s.size());
  Shape out(rank, 1);
  for (const Shape& s : shapes) {
    const size_t off = rank - s.size();
    for (size_t i = 0; i < s.size(); ++i) {
      int64_t& o = out[off + i];
      if (s[i] == o || s[i] == 1) continue;
      if (o == 1) {
        o = s[i];
        continue;
      }
      std::string all;
      for (const Shape& t : shapes) all += shape_str(t) + " ";
      fail("shapes ", all, "cannot be broadcast together");
    }
  }
  return out;
}

/// Element strides of a contiguous tensor of shape `in` read as `out` (rank-aligned on the
/// right); 0 where `in` is broadcast.
inline std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  int64_t s = 1;
  for (size_t k = 0; k < in.size(); ++k) {
    const size_t i = in.size() - 1 - k, o = out.size() - 1 - k;
    st[o] = in[i] == 1 ? 0 : s;
    s *= in[i];
  }
  return st;
}

/// Output dims and per-operand strides after merging chainable dimensions. dims is never empty
/// (a scalar output is one run of length 1).
struct BroadcastLoop {
  Shape dims;
  std::vector<std::vector<int64_t>> strides;  // [operand][dim]

  int64_t run() const { return dims.back(); }
  /// Number of runs (the product of all but the last dim).
  int64_t runs() const {
    int64_t n = 1;
    for (size_t i = 0; i + 1 < dims.size(); ++i) n *= dims[i];
    return n;
  }
  /// Element offset of operand `k` at the start of run `r`.
  int64_t offset(size_t k, int64_t r) const {
    int64_t off = 0;
    for (size_t i = dims.size() - 1; i-- > 0;) {
      off += (r % dims[i]) * strides[k][i];
      r /= dims[i];
    }
    return off;
  }
  /// Stride (0 or 1) of operand `k` within a run.
  int64_t inner_stride(size_t k) const { return strides[k].back(); }
};

/// Plans the loops for operands of shapes `ins` producing `out` (= broadcast_shapes(ins)).
inline BroadcastLoop plan_broadcast(const Shape& out, const std::vector<Shape>& ins) {
  const size_t nk = ins.size();
  std::vector<std::vector<int64_t>> st(nk);
  for (size_t k = 0; k < nk; ++k) st[k] = broadcast_strides(ins[k], out);
  BroadcastLoop L;
  L.strides.assign(nk, {});
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 1) continue;  // size-1 dims add nothing to the walk
    bool merge = !L.dims.empty();
    for (size_t k = 0; merge && k < nk; ++k) merge = L.strides[k].back() == st[k][i] * out[i];
    if (merge) {
      L.dims.back() *= out[i];
      for (size_t k = 0; k < nk; ++k) L.strides[k].back() = st[k][i];
    } else {
      L.dims.push_back(out[i]);
      for (size_t k = 0; k < nk; ++k) L.strides[k].push_back(st[k][i]);
    }
  }
  if (L.dims.empty()) {
    L.dims.push_back(1);
    for (size_t k = 0; k < nk; ++k) L.strides[k].push_back(0);
  }
  return L;
}

/// Calls fn(q, off) for the runs q in [begin, end) of `L`, where off[k] is the element offset
/// of operand k at the start of run q (offsets advance like an odometer, no division per run).
template <size_t K, class F>
void for_each_run(const BroadcastLoop& L, int64_t begin, int64_t end, F&& fn) {
  const size_t nd = L.dims.size() - 1;  // the outer dims; the last one is the run
  std::array<int64_t, K> off{};
  std::vector<int64_t> idx(nd, 0);
  int64_t r = begin;
  for (size_t i = nd; i-- > 0;) {
    idx[i] = r % L.dims[i];
    r /= L.dims[i];
    for (size_t k = 0; k < K; ++k) off[k] += idx[i] * L.strides[k][i];
  }
  for (int64_t q = begin; q < end; ++q) {
    fn(q, off);
    for (size_t i = nd; i-- > 0;) {
      for (size_t k = 0; k < K; ++k) off[k] += L.strides[k][i];
      if (++idx[i] < L.dims[i]) break;
      for (size_t k = 0; k < K; ++k) off[k] -= L.strides[k][i] * L.dims[i];
      idx[i] = 0;
    }
  }
}

}  // namespace sliver
