// Shared operator helpers: broadcast float binary ops and activations on the vector kernels.
#include "ops/common.h"

#include <cstdlib>
#include <new>

namespace sliver::ops {

float* thread_scratch(int slot, size_t n) {
  constexpr int kSlots = 4;
  struct Buffers {
    float* p[kSlots] = {};
    size_t cap[kSlots] = {};
    ~Buffers() {
      for (float* q : p) std::free(q);
    }
  };
  thread_local Buffers b;
  SLIVER_CHECK(slot >= 0 && slot < kSlots, "bad scratch slot ", slot);
  if (n > b.cap[slot]) {
    std::free(b.p[slot]);
    b.p[slot] = nullptr;
    b.cap[slot] = 0;
    const size_t bytes = (std::max<size_t>(n, 16) * sizeof(float) + 63) / 64 * 64;
    b.p[slot] = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!b.p[slot]) throw std::bad_alloc();
    b.cap[slot] = bytes / sizeof(float);
  }
  return b.p[slot];
}

namespace {

// a op b == b rop a: lets a scalar first operand use the vector-scalar kernel.
VBinary reversed(VBinary op) {
  switch (op) {
    case VBinary::sub: return VBinary::rsub;
    case VBinary::rsub: return VBinary::sub;
    case VBinary::div: return VBinary::rdiv;
    case VBinary::rdiv: return VBinary::div;
    default: return op;  // commutative
  }
}

bool act_to_vunary(Act act, VUnary* u) {
  switch (act) {
    case Act::none: return false;
    case Act::relu: *u = VUnary::relu; return true;
    case Act::clip: *u = VUnary::clip; return true;
    case Act::leaky_relu: *u = VUnary::leaky_relu; return true;
    case Act::sigmoid: *u = VUnary::sigmoid; return true;
    case Act::hard_sigmoid: *u = VUnary::hard_sigmoid; return true;
    case Act::hard_swish: *u = VUnary::hard_swish; return true;
    case Act::tanh: *u = VUnary::tanh; return true;
    case Act::gelu_erf: *u = VUnary::gelu_erf; return true;
    case Act::gelu_tanh: *u = VUnary::gelu_tanh; return true;
  }
  return false;
}

}  // namespace

void binary_f32(VBinary op, const float* a, const Shape& as, const float* b, const Shape& bs,
                float* y, const Shape& ys, ThreadPool* pool) {
  const BroadcastLoop L = plan_broadcast(ys, {as, bs});
  const F32VBinaryKernels& k = f32_vbinary(op);
  const F32VBinaryKernels& rk = f32_vbinary(reversed(op));
  const int64_t sa = L.inner_stride(0), sb = L.inner_stride(1);
  broadcast_for<2>(L, pool, 1.0, [&](int64_t n, int64_t yo, const int64_t* off) {
    const float* pa = a + off[0];
    const float* pb = b + off[1];
    float* py = y + yo;
    if (sa && sb) {
      k.vv(n, pa, pb, py);
    } else if (sa) {
      k.vs(n, pa, pb, py);
    } else if (sb) {
      rk.vs(n, pb, pa, py);
    } else {
      k.vs(1, pa, pb, py);
      std::fill(py + 1, py + n, py[0]);
    }
  });
}

const char* act_name(Act a) {
  switch (a) {
    case Act::none: return "";
    case Act::relu: return "relu";
    case Act::clip: return "clip";
    case Act::leaky_relu: return "leaky_relu";
    case Act::sigmoid: return "sigmoid";
    case Act::hard_sigmoid: return "hard_sigmoid";
    case Act::hard_swish: return "hard_swish";
    case Act::tanh: return "tanh";
    case Act::gelu_erf: return "gelu_erf";
    case Act::gelu_tanh: return "gelu_tanh";
  }
  return "?";
}

void apply_act_inplace(Act act, float alpha, float beta, float* x, int64_t n) {
  VUnary u;
  if (!act_to_vunary(act, &u)) return;
  F32VUnaryParams p;
  p.alpha = alpha;
  p.beta = beta;
  f32_vunary(u)(n, x, x, p);
}

void finish_epilogue(const Epilogue& ep, float* y, int64_t n, const float* residual) {
  // Conv + Add (+ Relu), the common case, in one pass: callers finishing rows of a few dozen
  // floats (sparse tiles) paid more for three kernel calls than for the arithmetic. The values
  // are the kernels': one float add, then max(0, v) with NaN kept.
  if (ep.act == Act::none && residual &&
      (ep.post_act == Act::none || ep.post_act == Act::relu)) {
    if (ep.post_act == Act::relu) {
      for (int64_t i = 0; i < n; ++i) {
        const float v = y[i] + residual[i];
        y[i] = v < 0.f ? 0.f : v;
      }
    } else {
      for (int64_t i = 0; i < n; ++i) y[i] += residual[i];
    }
    return;
  }
  apply_act_inplace(ep.act, ep.alpha, ep.beta, y, n);
  if (residual) f32_vbinary(VBinary::add).vv(n, y, residual, y);
  apply_act_inplace(ep.post_act, ep.post_alpha, ep.post_beta, y, n);
}

void add_broadcast_inplace(Tensor& y, const Tensor& residual, ThreadPool* pool) {
  if (residual.dtype != DType::f32) fail("residual must be float, got ", dtype_name(residual.dtype));
  if (broadcast_shapes({y.shape, residual.shape}) != y.shape)
    fail("residual of shape ", shape_str(residual.shape), " does not broadcast to the output ",
         shape_str(y.shape));
  binary_f32(VBinary::add, y.ptr<float>(), y.shape, residual.ptr<float>(), residual.shape,
             y.ptr<float>(), y.shape, pool);
}

}  // namespace sliver::ops
