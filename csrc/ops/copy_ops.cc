// Data movement: Transpose, Slice, Expand, Concat, Split, Gather, Tile, for any fixed-size dtype.
//
// Transpose, Slice and Expand are all "read a strided view, write it contiguously": each is a
// shape plus per-dim source strides (permuted, stepped, or 0 where broadcast), copied by one
// routine that merges chainable dims and moves the innermost run with memcpy, a fill or a
// strided loop. Only the element size matters, so dtypes are dispatched by size -- and an input
// whose type is not known when the session is built (the output of a contrib op ONNX shape
// inference does not know) still gets a kernel, which checks the value it receives.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "ops/common.h"
#include "ukernels/transpose/transpose.h"

namespace sliver::ops {
namespace {

// A transpose whose last two output dims (A, B) read the source at a + b * sb (L's last dim is
// b; the one before it has source stride 1): blocks of rows on the tiled kernel for the element
// size (transpose.h), which reads each source run in order instead of one element per line.
template <class U>
void transpose_blocks(TransposeFn fn, const U* src, const BroadcastLoop& L, U* dst,
                      ThreadPool* pool) {
  constexpr int64_t kRows = 64;
  const size_t n = L.dims.size();
  const int64_t A = L.dims[n - 2], B = L.dims[n - 1], sb = L.inner_stride(0);
  const int64_t blocks = (A + kRows - 1) / kRows, outer = L.runs() / A;
  parallel_for(pool, outer * blocks, static_cast<double>(kRows * B), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o = t / blocks, a0 = t % blocks * kRows;
      fn(std::min(kRows, A - a0), B, src + L.offset(0, o * A) + a0, sb, dst + (o * A + a0) * B, B);
    }
  });
}

// dst[i...] = src[sum i_k * strides[k]] over `shape`, dst contiguous.
template <class U>
void strided_copy(const U* src, const Shape& shape, const std::vector<int64_t>& strides, U* dst,
                  ThreadPool* pool) {
  BroadcastLoop L;  // reuse the run walker: operand 0 is the source
  L.strides.resize(1);
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    if (!L.dims.empty() && L.strides[0].back() == strides[i] * shape[i]) {
      L.dims.back() *= shape[i];
      L.strides[0].back() = strides[i];
    } else {
      L.dims.push_back(shape[i]);
      L.strides[0].push_back(strides[i]);
    }
  }
  if (L.dims.empty()) {
    L.dims.push_back(1);
    L.strides[0].push_back(0);
  }
  const int64_t s = L.inner_stride(0);
  const size_t n = L.dims.size();
  if (n >= 2 && s != 0 && s != 1 && L.strides[0][n - 2] == 1) {
    if (const TransposeFn fn = transpose_kernel(static_cast<int>(sizeof(U)))) {
      transpose_blocks(fn, src, L, dst, pool);
      return;
    }
  }
  broadcast_for<1>(L, pool, 1.0, [&](int64_t n, int64_t yo, const int64_t* off) {
    const U* p = src + off[0];
    U* d = dst + yo;
    if (s == 1) std::memcpy(d, p, n * sizeof(U));
    else if (s == 0) std::fill(d, d + n, *p);
    else
      for (int64_t i = 0; i < n; ++i) d[i] = p[i * s];
  });
}

std::vector<int64_t> contiguous_strides(const Shape& s) {
  std::vector<int64_t> st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

// A static dtype these kernels accept: one they can carry, or not known yet.
bool layout_ok(DType t) { return t == DType::undefined || movable(t); }
bool index_ok(DType t) { return t == DType::undefined || is_int_index(t); }

// Run-time half of layout_ok: the value must be a numeric tensor.
const Tensor& numeric(const Tensor& x, const char* op) {
  if (!movable(x.dtype))
    fail(op, ": the input is not a numeric tensor (", dtype_name(x.dtype),
         "), which the native kernel chosen for an input of unknown type cannot carry");
  return x;
}

template <class F>
void by_size(DType t, F&& f) {
  if (!visit_bits(t, f)) fail("unsupported dtype ", dtype_name(t));
}

// ---- Transpose ----

class TransposeKernel final : public Kernel {
 public:
  explicit TransposeKernel(std::vector<int64_t> perm) : perm_(std::move(perm)) {}
  void run(RunContext& ctx, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor& x = numeric(need(in, 0), "Transpose");
    const int64_t r = x.rank();
    std::vector<int64_t> perm = perm_;
    if (perm.empty())
      for (int64_t i = r - 1; i >= 0; --i) perm.push_back(i);
    if (static_cast<int64_t>(perm.size()) != r) fail("perm has ", perm.size(), " entries for rank ", r);
    const std::vector<int64_t> st = contiguous_strides(x.shape);
    Shape ys(r);
    std::vector<int64_t> src_strides(r);
    std::vector<bool> seen(r, false);
    for (int64_t i = 0; i < r; ++i) {
      const int64_t p = normalize_axis(perm[i], r);
      if (seen[p]) fail("perm repeats axis ", p);
      seen[p] = true;
      ys[i] = x.shape[p];
      src_strides[i] = st[p];
    }
    Tensor y = Tensor::empty(x.dtype, ys);
    by_size(x.dtype, [&](auto tag) {
      using U = decltype(tag);
      strided_copy<U>(x.ptr<U>(), ys, src_strides, y.ptr<U>(), ctx.pool);
    });
    out[0] = std::move(y);
  }

 private:
  std::vector<int64_t> perm_;
};

std::unique_ptr<Kernel> make_transpose(const KernelInit& init) {
  if (!layout_ok(init.input_dtypes[0])) return nullptr;
  return std::make_unique<TransposeKernel>(init.attrs.get_ints("perm"));
}
SLIVER_REGISTER_KERNEL("Transpose", make_transpose);

// ---- Slice ----

class SliceKernel final : public Kernel {
 public:
  // Before opset 10 starts/ends/axes are attributes (no steps); after, inputs 1-4.
  SliceKernel(bool from_inputs, std::vector<int64_t> starts, std::vector<int64_t> ends,
              std::vector<int64_t> axes)
      : from_inputs_(from_inputs), starts_(std::move(starts)), ends_(std::move(ends)), axes_(std::move(axes)) {}

  void run(RunContext& ctx, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor& x = numeric(need(in, 0), "Slice");
    std::vector<int64_t> starts = starts_, ends = ends_, axes = axes_, steps;
    if (from_inputs_) {
      starts = read_ints(need(in, 1), "starts");
      ends = read_ints(need(in, 2), "ends");
      axes = opt(in, 3) ? read_ints(*in[3], "axes") : std::vector<int64_t>{};
      if (opt(in, 4)) steps = read_ints(*in[4], "steps");
    }
    const int64_t r = x.rank();
    if (axes.empty())
      for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
      fail("starts, ends, axes and steps differ in length");
    const std::vector<int64_t> st = contiguous_strides(x.shape);
    Shape ys = x.shape;
    std::vector<int64_t> strides = st;
    int64_t offset = 0;
    for (size_t k = 0; k < starts.size(); ++k) {
      const int64_t a = normalize_axis(axes[k], r), dim = x.shape[a], step = steps[k];
      if (step == 0) fail("slice step is 0");
      int64_t s = starts[k], e = ends[k];
      if (s < 0) s += dim;
      if (e < 0) e += dim;
      if (step > 0) {
        s = std::clamp<int64_t>(s, 0, dim);
        e = std::clamp<int64_t>(e, 0, dim);
      } else {
        s = std::clamp<int64_t>(s, 0, dim - 1);
        e = std::clamp<int64_t>(e, -1, dim - 1);
      }
      const int64_t n = step > 0 ? (e > s ? (e - s + step - 1) / step : 0)
                                 : (s > e ? (s - e - step - 1) / (-step) : 0);
      ys[a] = n;
      if (n > 0) offset += s * st[a];
      strides[a] = st[a] * step;
    }
    Tensor y = Tensor::empty(x.dtype, ys);
    if (y.numel() > 0) {
      by_size(x.dtype, [&](auto tag) {
        using U = decltype(tag);
        strided_copy<U>(x.ptr<U>() + offset, ys, strides, y.ptr<U>(), ctx.pool);
      });
    }
    out[0] = std::move(y);
  }

 private:
  bool from_inputs_;
  std::vector<int64_t> starts_, ends_, axes_;
};

std::unique_ptr<Kernel> make_slice(const KernelInit& init) {
  if (!layout_ok(init.input_dtypes[0])) return nullptr;
  if (init.opset < 10)
    return std::make_unique<SliceKernel>(false, init.attrs.get_ints("starts"), init.attrs.get_ints("ends"),
                                         init.attrs.get_ints("axes"));
  for (int i = 1; i < init.num_inputs(); ++i)
    if (init.has_input(i) && !is_int_index(init.input_dtypes[i])) return nullptr;
  return std::make_unique<SliceKernel>(true, std::vector<int64_t>{}, std::vector<int64_t>{},
                                       std::vector<int64_t>{});
}
SLIVER_REGISTER_KERNEL("Slice", make_slice);

// ---- Expand ----

class ExpandKernel final : public Kernel {
 public:
  void run(RunContext& ctx, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor& x = numeric(need(in, 0), "Expand");
    const Shape want = read_ints(need(in, 1), "shape");
    const Shape ys = broadcast_shapes({x.shape, want});
    Tensor y = Tensor::empty(x.dtype, ys);
    by_size(x.dtype, [&](auto tag) {
      using U = decltype(tag);
      strided_copy<U>(x.ptr<U>(), ys, broadcast_strides(x.shape, ys), y.ptr<U>(), ctx.pool);
    });
    out[0] = std::move(y);
  }
};

std::unique_ptr<Kernel> make_expand(const KernelInit& init) {
  if (init.num_inputs() != 2 || !layout_ok(init.input_dtypes[0]) || !index_ok(init.input_dtypes[1]))
    return nullptr;
  return std::make_unique<ExpandKernel>();
}
SLIVER_REGISTER_KERNEL("Expand", make_expand);

// ---- Concat / Split: blocks of (extent along axis) x inner per outer index ----

class ConcatKernel final : public Kernel {
 public:
  explicit ConcatKernel(int64_t axis) : axis_(axis) {}
  void run(RunContext&, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor& x0 = numeric(need(in, 0), "Concat");
    const int64_t r = x0.rank();
    const int64_t axis = normalize_axis(axis_, r);
    Shape ys = x0.shape;
    ys[axis] = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      const Tensor& t = need(in, i);
      if (t.dtype != x0.dtype || t.rank() != r) fail("input ", i, " differs in dtype or rank");
      for (int64_t d = 0; d < r; ++d)
        if (d != axis && t.shape[d] != x0.shape[d])
          fail("input ", i, " of shape ", shape_str(t.shape), " does not match ", shape_str(x0.shape));
      ys[axis] += t.shape[axis];
    }
    Tensor y = Tensor::empty(x0.dtype, ys);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= ys[d];
    for (int64_t d = axis + 1; d < r; ++d) inner *= ys[d];
    const size_t es = dtype_size(x0.dtype);
    const int64_t row = ys[axis] * inner * es;
    char* dst = static_cast<char*>(y.data);
    int64_t pos = 0;
    for (const Tensor* t : in) {
      const int64_t chunk = t->shape[axis] * inner * es;
      const char* src = static_cast<const char*>(t->data);
      for (int64_t o = 0; o < outer && chunk; ++o) std::memcpy(dst + o * row + pos, src + o * chunk, chunk);
      pos += chunk;
    }
    out[0] = std::move(y);
  }

 private:
  int64_t axis_;
};

std::unique_ptr<Kernel> make_concat(const KernelInit& init) {
  if (init.num_inputs() < 1 || !init.attrs.has("axis")) return nullptr;
  DType known = DType::undefined;  // inputs must agree; unknown ones are checked at run time
  for (DType t : init.input_dtypes) {
    if (!layout_ok(t) || (t != DType::undefined && known != DType::undefined && t != known))
      return nullptr;
    if (t != DType::undefined) known = t;
  }
  return std::make_unique<ConcatKernel>(init.attrs.get_int("axis", 0));
}
SLIVER_REGISTER_KERNEL("Concat", make_concat);

class SplitKernel final : public Kernel {
 public:
  SplitKernel(int64_t axis, std::vector<int64_t> split, bool split_input, int64_t num_outputs_attr)
      : axis_(axis), split_(std::move(split)), split_input_(split_input), num_outputs_attr_(num_outputs_attr) {}

  void run(RunContext&, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor& x = numeric(need(in, 0), "Split");
    const int64_t r = x.rank(), axis = normalize_axis(axis_, r), dim = x.shape[axis];
    const int64_t nout = static_cast<int64_t>(out.size());
    std::vector<int64_t> split = split_;
    if (split_input_ && opt(in, 1)) split = read_ints(*in[1], "split");
    if (split.empty()) {
      if (num_outputs_attr_ > 0) {  // opset 18: ceil-sized chunks, the last one smaller
        const int64_t c = (dim + nout - 1) / nout;
        for (int64_t i = 0; i < nout; ++i) split.push_back(std::max<int64_t>(0, std::min(c, dim - i * c)));
      } else {
        if (dim % nout) fail("axis of size ", dim, " does not split into ", nout, " equal parts");
        split.assign(nout, dim / nout);
      }
    }
    if (static_cast<int64_t>(split.size()) != nout) fail("split has ", split.size(), " entries for ", nout, " outputs");
    int64_t total = 0;
    for (int64_t s : split) total += s;
    if (total != dim) fail("split sizes sum to ", total, ", axis has ", dim);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= x.shape[d];
    for (int64_t d = axis + 1; d < r; ++d) inner *= x.shape[d];
    const size_t es = dtype_size(x.dtype);
    const int64_t row = dim * inner * es;
    const char* src = static_cast<const char*>(x.data);
    int64_t pos = 0;
    for (int64_t i = 0; i < nout; ++i) {
      Shape ys = x.shape;
      ys[axis] = split[i];
      Tensor y = Tensor::empty(x.dtype, ys);
      const int64_t chunk = split[i] * inner * es;
      char* dst = static_cast<char*>(y.data);
      for (int64_t o = 0; o < outer && chunk; ++o) std::memcpy(dst + o * chunk, src + o * row + pos, chunk);
      pos += chunk;
      out[i] = std::move(y);
    }
  }

 private:
  int64_t axis_;
  std::vector<int64_t> split_;
  bool split_input_;
  int64_t num_outputs_attr_;
};

std::unique_ptr<Kernel> make_split(const KernelInit& init) {
  if (!layout_ok(init.input_dtypes[0]) || init.num_outputs() < 1) return nullptr;
  const bool split_input = init.opset >= 13;
  if (split_input && init.has_input(1) && !is_int_index(init.input_dtypes[1])) return nullptr;
  return std::make_unique<SplitKernel>(init.attrs.get_int("axis", 0), init.attrs.get_ints("split"),
                                       split_input, init.attrs.get_int("num_outputs", 0));
}
SLIVER_REGISTER_KERNEL("Split", make_split);

// ---- Gather: out[outer, idx..., inner] = data[outer, indices[idx...], inner] ----

class GatherKernel final : public Kernel {
 public:
  explicit GatherKernel(int64_t axis) : axis_(axis) {}
  void run(RunContext& ctx, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor& x = numeric(need(in, 0), "Gather");
    const Tensor& idx_t = need(in, 1);
    const int64_t r = x.rank();
    if (r == 0) fail("Gather on a scalar");
    const int64_t axis = normalize_axis(axis_, r), dim = x.shape[axis];
    std::vector<int64_t> idx = read_ints(idx_t, "indices");
    for (int64_t& i : idx) {
      if (i < -dim || i >= dim) fail("index ", i, " out of range for axis of size ", dim);
      if (i < 0) i += dim;
    }
    Shape ys(x.shape.begin(), x.shape.begin() + axis);
    ys.insert(ys.end(), idx_t.shape.begin(), idx_t.shape.end());
    ys.insert(ys.end(), x.shape.begin() + axis + 1, x.shape.end());
    Tensor y = Tensor::empty(x.dtype, ys);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= x.shape[d];
    for (int64_t d = axis + 1; d < r; ++d) inner *= x.shape[d];
    const size_t es = dtype_size(x.dtype);
    const int64_t blk = inner * es, ni = static_cast<int64_t>(idx.size());
    const char* src = static_cast<const char*>(x.data);
    char* dst = static_cast<char*>(y.data);
    parallel_for(ctx.pool, outer * ni, static_cast<double>(inner), [&](int64_t b, int64_t e) {
      for (int64_t q = b; q < e; ++q) {
        const int64_t o = q / ni, j = q % ni;
        std::memcpy(dst + q * blk, src + (o * dim + idx[j]) * blk, blk);
      }
    });
    out[0] = std::move(y);
  }

 private:
  int64_t axis_;
};

std::unique_ptr<Kernel> make_gather(const KernelInit& init) {
  if (init.num_inputs() != 2 || !layout_ok(init.input_dtypes[0]) || !index_ok(init.input_dtypes[1]))
    return nullptr;
  return std::make_unique<GatherKernel>(init.attrs.get_int("axis", 0));
}
SLIVER_REGISTER_KERNEL("Gather", make_gather);

// ---- Tile: fill the first copy of each block, then replicate it ----

void tile_fill(const char* src, char* dst, const Shape& in, const std::vector<int64_t>& reps,
               size_t axis, size_t es, const std::vector<int64_t>& in_inner,
               const std::vector<int64_t>& out_inner) {
  const int64_t n = in[axis];
  if (axis + 1 == in.size()) {
    for (int64_t k = 0; k < reps[axis]; ++k) std::memcpy(dst + k * n * es, src, n * es);
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    tile_fill(src + i * in_inner[axis] * es, dst + i * out_inner[axis] * es, in, reps, axis + 1, es,
              in_inner, out_inner);
  const int64_t block = n * out_inner[axis] * es;
  for (int64_t k = 1; k < reps[axis]; ++k) std::memcpy(dst + k * block, dst, block);
}

class TileKernel final : public Kernel {
 public:
  void run(RunContext&, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor& x = numeric(need(in, 0), "Tile");
    const std::vector<int64_t> reps = read_ints(need(in, 1), "repeats");
    if (static_cast<int64_t>(reps.size()) != x.rank()) fail("repeats has ", reps.size(), " entries for rank ", x.rank());
    Shape ys = x.shape;
    for (size_t i = 0; i < ys.size(); ++i) {
      if (reps[i] < 0) fail("negative repeat");
      ys[i] *= reps[i];
    }
    Tensor y = Tensor::empty(x.dtype, ys);
    if (y.numel() > 0) {
      if (x.rank() == 0) {
        std::memcpy(y.data, x.data, dtype_size(x.dtype));
      } else {
        std::vector<int64_t> in_inner(ys.size(), 1), out_inner(ys.size(), 1);
        for (size_t i = ys.size() - 1; i-- > 0;) {
          in_inner[i] = in_inner[i + 1] * x.shape[i + 1];
          out_inner[i] = out_inner[i + 1] * ys[i + 1];
        }
        tile_fill(static_cast<const char*>(x.data), static_cast<char*>(y.data), x.shape, reps, 0,
                  dtype_size(x.dtype), in_inner, out_inner);
      }
    }
    out[0] = std::move(y);
  }
};

std::unique_ptr<Kernel> make_tile(const KernelInit& init) {
  if (init.num_inputs() != 2 || !layout_ok(init.input_dtypes[0]) || !index_ok(init.input_dtypes[1]))
    return nullptr;
  return std::make_unique<TileKernel>();
}
SLIVER_REGISTER_KERNEL("Tile", make_tile);

}  // namespace
}  // namespace sliver::ops
