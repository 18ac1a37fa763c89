// Helpers shared by the operator files: attributes, int inputs, axes, threading, dtype dispatch.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sliver/broadcast.h"
#include "sliver/cpu.h"
#include "sliver/error.h"
#include "sliver/gemm.h"
#include "sliver/kernel.h"
#include "sliver/tensor.h"
#include "sliver/thread_pool.h"
#include "ukernels/f32_vbinary/f32_vbinary.h"
#include "ukernels/f32_vunary/f32_vunary.h"

namespace sliver::ops {

// ---- attributes ----

/// A float list attribute. An empty list arrives from Python as a list of ints, and a list of
/// whole numbers may too, so both are accepted.
inline std::vector<double> floats_attr(const Attrs& a, const std::string& name) {
  auto it = a.values.find(name);
  if (it == a.values.end()) return {};
  if (auto p = std::get_if<std::vector<double>>(&it->second)) return *p;
  if (auto p = std::get_if<std::vector<int64_t>>(&it->second))
    return std::vector<double>(p->begin(), p->end());
  if (auto p = std::get_if<double>(&it->second)) return {*p};
  fail("attribute '", name, "' is not a list of floats");
}

/// Axis in [0, rank) from an ONNX axis in [-rank, rank).
inline int64_t normalize_axis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1))
    fail("axis ", axis, " is out of range for rank ", rank);
  return axis < 0 ? axis + rank : axis;
}

// ---- tensors ----

inline bool is_int_index(DType t) { return t == DType::i64 || t == DType::i32; }

/// The values of an int32/int64 tensor (shapes, axes, pads, indices given as inputs).
inline std::vector<int64_t> read_ints(const Tensor& t, const char* what) {
  std::vector<int64_t> v(t.numel());
  if (t.dtype == DType::i64) {
    std::copy(t.ptr<int64_t>(), t.ptr<int64_t>() + v.size(), v.begin());
  } else if (t.dtype == DType::i32) {
    std::copy(t.ptr<int32_t>(), t.ptr<int32_t>() + v.size(), v.begin());
  } else {
    fail(what, " must be int64 or int32, got ", dtype_name(t.dtype));
  }
  return v;
}

/// Element 0 of a numeric tensor as double (scalar inputs such as Clip's min or Range's start).
inline double read_scalar(const Tensor& t, const char* what) {
  if (t.numel() < 1) fail(what, " is empty");
  switch (t.dtype) {
    case DType::f32: return t.ptr<float>()[0];
    case DType::f64: return t.ptr<double>()[0];
    case DType::i64: return static_cast<double>(t.ptr<int64_t>()[0]);
    case DType::i32: return t.ptr<int32_t>()[0];
    case DType::i16: return t.ptr<int16_t>()[0];
    case DType::i8: return t.ptr<int8_t>()[0];
    case DType::u8: return t.ptr<uint8_t>()[0];
    case DType::u16: return t.ptr<uint16_t>()[0];
    case DType::u32: return t.ptr<uint32_t>()[0];
    case DType::u64: return static_cast<double>(t.ptr<uint64_t>()[0]);
    case DType::boolean: return t.ptr<bool>()[0];
    default: fail(what, ": unsupported dtype ", dtype_name(t.dtype));
  }
}

/// The tensor at input i, or a failure naming the input (for required inputs).
inline const Tensor& need(const std::vector<const Tensor*>& in, size_t i) {
  if (i >= in.size() || !in[i]) fail("required input ", i, " is missing");
  return *in[i];
}

inline const Tensor* opt(const std::vector<const Tensor*>& in, size_t i) {
  return i < in.size() ? in[i] : nullptr;
}

/// Memory for a result of `dtype` and `shape`: the buffer of the first of the `candidates`
/// inputs the executor marked reusable (ctx.reusable_inputs) with that dtype and element count,
/// else Tensor::empty. Only for kernels that compute each output element from input elements at
/// the same index (elementwise maps, broadcasting the other operands).
inline Tensor output_reusing(const RunContext& ctx, const std::vector<const Tensor*>& in,
                             std::initializer_list<size_t> candidates, DType dtype,
                             const Shape& shape) {
  for (size_t i : candidates) {
    if (i < in.size() && i < 64 && (ctx.reusable_inputs >> i & 1) && in[i] &&
        in[i]->dtype == dtype && in[i]->numel() == shape_numel(shape))
      return in[i]->view(shape);
  }
  return Tensor::empty(dtype, shape);
}

/// Input i's static dtype (undefined when the node has no such input).
inline DType in_dtype(const KernelInit& init, int i) {
  return i < init.num_inputs() ? init.input_dtypes[i] : DType::undefined;
}

/// Known static rank of input i, or -1.
inline int64_t static_rank(const KernelInit& init, int i) {
  if (i >= static_cast<int>(init.input_shapes.size()) || !init.input_shapes[i].known) return -1;
  return static_cast<int64_t>(init.input_shapes[i].dims.size());
}

// ---- threading ----

/// Splits [0, n) over the pool when there is enough work (n items of about `cost` element
/// operations each); waking workers costs microseconds, so small jobs run inline.
template <class F>
void parallel_for(ThreadPool* pool, int64_t n, double cost, F&& fn) {
  constexpr double kMinParallelWork = 1 << 15;
  if (n <= 0) return;
  if (!pool || pool->num_threads() <= 1 || n == 1 || n * cost < kMinParallelWork) {
    fn(int64_t{0}, n);
    return;
  }
  pool->parallel_for(n, [&](int64_t b, int64_t e) { fn(b, e); });
}

/// Walks the output of a broadcast (contiguous, L.dims elements) in pieces, in parallel:
/// fn(n, y_off, off) computes n outputs from y_off, operand k starting at element off[k] and
/// advancing by L.inner_stride(k) (0 or 1). Long runs are cut so one big run still parallelises.
template <size_t K, class F>
void broadcast_for(const BroadcastLoop& L, ThreadPool* pool, double cost_per_elem, F&& fn) {
  constexpr int64_t kChunk = 16384;
  const int64_t run = L.run(), runs = L.runs();
  if (run * runs == 0) return;
  const int64_t pieces = (run + kChunk - 1) / kChunk;
  if (pieces == 1) {
    parallel_for(pool, runs, run * cost_per_elem, [&](int64_t b, int64_t e) {
      for_each_run<K>(L, b, e, [&](int64_t q, const std::array<int64_t, K>& off) {
        fn(run, q * run, off.data());
      });
    });
    return;
  }
  parallel_for(pool, runs * pieces, kChunk * cost_per_elem, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t q = i / pieces, start = (i % pieces) * kChunk;
      std::array<int64_t, K> off;
      for (size_t k = 0; k < K; ++k) off[k] = L.offset(k, q) + start * L.inner_stride(k);
      fn(std::min(kChunk, run - start), q * run + start, off.data());
    }
  });
}

// ---- dtype dispatch ----

/// Calls f(T{}) with T the C++ type of a numeric dtype; returns false for other dtypes.
template <class F>
bool visit_numeric(DType t, F&& f) {
  switch (t) {
    case DType::f32: f(float{}); return true;
    case DType::f64: f(double{}); return true;
    case DType::i8: f(int8_t{}); return true;
    case DType::u8: f(uint8_t{}); return true;
    case DType::i16: f(int16_t{}); return true;
    case DType::u16: f(uint16_t{}); return true;
    case DType::i32: f(int32_t{}); return true;
    case DType::u32: f(uint32_t{}); return true;
    case DType::i64: f(int64_t{}); return true;
    case DType::u64: f(uint64_t{}); return true;
    case DType::boolean: f(bool{}); return true;
    default: return false;
  }
}

/// Unsigned integer of the same size as one element: data movement needs only the size.
template <size_t N> struct Bits;
template <> struct Bits<1> { using type = uint8_t; };
template <> struct Bits<2> { using type = uint16_t; };
template <> struct Bits<4> { using type = uint32_t; };
template <> struct Bits<8> { using type = uint64_t; };

/// Calls f(U{}) with U an unsigned type of the element size of `t`; false for opaque dtypes.
template <class F>
bool visit_bits(DType t, F&& f) {
  switch (dtype_size(t)) {
    case 1: f(uint8_t{}); return true;
    case 2: f(uint16_t{}); return true;
    case 4: f(uint32_t{}); return true;
    case 8: f(uint64_t{}); return true;
    default: return false;
  }
}

/// Whether native data-movement kernels can carry this dtype: fixed-size elements that also
/// arrive as numeric tensors at run time (bfloat16 and the float8/int4 types travel as opaque
/// Python objects, since numpy has no dtype for them).
inline bool movable(DType t) {
  return t != DType::undefined && t != DType::bf16 && static_cast<int>(t) <= 13 &&
         dtype_size(t) != 0;
}

// ---- row reductions (8 independent partial results: vectorisable, and shorter add chains) ----

inline float row_max(const float* x, int64_t n) {
  float acc[8];
  for (int j = 0; j < 8; ++j) acc[j] = -std::numeric_limits<float>::infinity();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] = x[i + j] > acc[j] ? x[i + j] : acc[j];
  float m = acc[0];
  for (int j = 1; j < 8; ++j) m = acc[j] > m ? acc[j] : m;
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

inline float row_sum(const float* x, int64_t n) {
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += x[i + j];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += x[i];
  return s;
}

/// Sum of (x[i] - c)^2.
inline float row_sum_sq_dev(const float* x, int64_t n, float c) {
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += (x[i + j] - c) * (x[i + j] - c);
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += (x[i] - c) * (x[i] - c);
  return s;
}

// ---- per-thread scratch ----

/// A per-thread float buffer of at least n elements (64-byte aligned), grown on demand and kept
/// for the thread's life, so steady-state runs do not allocate (or page-fault) per call. `slot`
/// separates buffers a kernel needs at the same time; a kernel must not hold a slot across a
/// call into another kernel that could use it.
float* thread_scratch(int slot, size_t n);

// ---- fused activations ----

/// An activation as named by the fusion passes' `activation` attribute, mapped onto the GEMM
/// epilogue. Returns false for a name it does not know (the factory then declines).
inline bool parse_activation(const std::string& name, const std::vector<double>& params, Act* act,
                             float* alpha, float* beta) {
  auto p = [&](size_t i, double dflt) { return static_cast<float>(i < params.size() ? params[i] : dflt); };
  *alpha = *beta = 0.f;
  if (name.empty()) {
    *act = Act::none;
  } else if (name == "Relu") {
    *act = Act::relu;
  } else if (name == "Clip") {
    *act = Act::clip;
    *alpha = p(0, -3.4028234663852886e38);
    *beta = p(1, 3.4028234663852886e38);
  } else if (name == "LeakyRelu") {
    *act = Act::leaky_relu;
    *alpha = p(0, 0.01);
  } else if (name == "Sigmoid") {
    *act = Act::sigmoid;
  } else if (name == "HardSigmoid") {
    *act = Act::hard_sigmoid;
    *alpha = p(0, 0.2);
    *beta = p(1, 0.5);
  } else if (name == "HardSwish") {
    *act = Act::hard_swish;
    *alpha = 1.f / 6;
    *beta = 0.5f;
  } else if (name == "Tanh") {
    *act = Act::tanh;
  } else if (name == "Gelu") {
    // Params [approximate]: absent or 0 = erf form, 1 = tanh form.
    *act = p(0, 0) != 0 ? Act::gelu_tanh : Act::gelu_erf;
  } else {
    return false;
  }
  return true;
}

/// The fused epilogue of a sliver:Fused* node (activation then residual then post_activation);
/// false if an activation name is unknown.
inline bool fused_epilogue(const Attrs& a, Epilogue* ep) {
  return parse_activation(a.get_string("activation", ""), floats_attr(a, "activation_params"),
                          &ep->act, &ep->alpha, &ep->beta) &&
         parse_activation(a.get_string("post_activation", ""),
                          floats_attr(a, "post_activation_params"), &ep->post_act,
                          &ep->post_alpha, &ep->post_beta);
}

/// y = a op b for float32 with numpy broadcasting (ys = broadcast_shapes({as, bs})); y may be a
/// when as == ys (in place).
void binary_f32(VBinary op, const float* a, const Shape& as, const float* b, const Shape& bs,
                float* y, const Shape& ys, ThreadPool* pool);

const char* act_name(Act a);

/// Applies `act` in place to n floats with the vector kernels (f32_vunary).
void apply_act_inplace(Act act, float alpha, float beta, float* x, int64_t n);

/// y = post_act(act(y) + residual) over n floats where the GEMM epilogue could not do it (the
/// residual broadcasts, or a kernel other than GEMM produced y). residual may be null.
void finish_epilogue(const Epilogue& ep, float* y, int64_t n, const float* residual);

/// Broadcast-adds `residual` (any shape broadcastable to y's) into y.
void add_broadcast_inplace(Tensor& y, const Tensor& residual, ThreadPool* pool);

}  // namespace sliver::ops
