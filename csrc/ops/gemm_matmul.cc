// Gemm, MatMul and their fused forms (sliver:FusedGemm, sliver:FusedMatMul) on the f32_gemm engine.
//
// Constant weights are packed once at creation (alpha folded in). Gemm's C becomes the GEMM
// epilogue's bias when it is a vector (per column for [N]/[1,N], per row for [M,1]) and is
// otherwise broadcast into Y and accumulated with beta_c. MatMul with a 2-D right operand
// multiplies all of A's leading dims as one tall matrix (one GEMM call, B packed once); batched
// right operands run one GEMM per broadcast batch, in parallel over batches when each is small.
// Fused forms: y = post_act(act(op + bias) + residual), all inside the epilogue when the residual
// has the output's shape (otherwise it is broadcast-added after the GEMM).
#include "ops/common.h"

namespace sliver::ops {
namespace {

// Below this many multiply-adds per matrix, batches run in parallel (one GEMM per thread)
// instead of one GEMM at a time on all threads.
constexpr double kSmallGemmMacs = 1 << 20;

Tensor scaled_copy(const Tensor& t, float s) {
  Tensor c = Tensor::empty(DType::f32, t.shape);
  for (int64_t i = 0; i < t.numel(); ++i) c.ptr<float>()[i] = t.ptr<float>()[i] * s;
  return c;
}

// Adds the broadcast residual and post-activation the GEMM could not apply.
void late_residual(const Epilogue& ep, Tensor& y, const Tensor& res, ThreadPool* pool) {
  add_broadcast_inplace(y, res, pool);
  apply_act_inplace(ep.post_act, ep.post_alpha, ep.post_beta, y.ptr<float>(), y.numel());
}

std::string fused_suffix(const Epilogue& ep, bool has_residual) {
  std::string s;
  if (ep.act != Act::none) s += std::string(" +") + act_name(ep.act);
  if (has_residual) s += " +residual";
  if (ep.post_act != Act::none) s += std::string(" +") + act_name(ep.post_act);
  return s;
}

// ---- Gemm ----

class GemmKernel final : public Kernel {
 public:
  GemmKernel(const KernelInit& init, const Epilogue& ep, int residual_input)
      : ep_(ep), residual_input_(residual_input) {
    const Attrs& a = init.attrs;
    alpha_ = static_cast<float>(a.get_float("alpha", 1.0));
    beta_ = static_cast<float>(a.get_float("beta", 1.0));
    trans_a_ = a.get_int("transA", 0) != 0;
    trans_b_ = a.get_int("transB", 0) != 0;
    if (init.is_const(1) && init.const_inputs[1].rank() == 2) {
      const Tensor& b = init.const_inputs[1];
      const Tensor src = alpha_ == 1.f ? b : scaled_copy(b, alpha_);
      const int64_t k = trans_b_ ? b.shape[1] : b.shape[0], n = trans_b_ ? b.shape[0] : b.shape[1];
      packed_b_ = pack_b(k, n, src.ptr<float>(), b.shape[1], trans_b_);
      b_shape_ = b.shape;
    }
  }

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& A = need(in, 0);
    const Tensor& B = need(in, 1);
    const Tensor* C = opt(in, 2);
    const Tensor* res = residual_input_ >= 0 ? opt(in, residual_input_) : nullptr;
    if (A.rank() != 2 || B.rank() != 2) fail("A and B must be 2-D");
    const int64_t M = trans_a_ ? A.shape[1] : A.shape[0], K = trans_a_ ? A.shape[0] : A.shape[1];
    const int64_t KB = trans_b_ ? B.shape[1] : B.shape[0], N = trans_b_ ? B.shape[0] : B.shape[1];
    if (K != KB) fail("inner dimensions differ: A ", shape_str(A.shape), ", B ", shape_str(B.shape));
    Tensor y = Tensor::empty(DType::f32, {M, N});

    GemmOperandA a;
    Tensor a_scaled;
    if (packed_b_ || alpha_ == 1.f) {
      a.data = A.ptr<float>();
    } else {
      a_scaled = scaled_copy(A, alpha_);
      a.data = a_scaled.ptr<float>();
    }
    a.ld = A.shape[1];
    a.trans = trans_a_;
    GemmOperandB b;
    if (packed_b_) {
      if (B.shape != b_shape_) fail("B changed shape");
      b.packed = packed_b_.get();
    } else {
      b.data = B.ptr<float>();
      b.ld = B.shape[1];
      b.trans = trans_b_;
    }

    Epilogue ep = ep_;
    float beta_c = 0.f;
    std::vector<float> bias;
    if (C && beta_ != 0.f && C->numel() > 0) {
      if (C->dtype != DType::f32) fail("C must be float");
      Shape cs = C->shape;
      while (!cs.empty() && cs.front() == 1 && cs.size() > 1) cs.erase(cs.begin());
      if (C->numel() == 1) {
        bias.assign(N, beta_ * C->ptr<float>()[0]);
      } else if (cs == Shape{N}) {
        bias.assign(C->ptr<float>(), C->ptr<float>() + N);
      } else if (cs == Shape{M, 1}) {
        bias.assign(C->ptr<float>(), C->ptr<float>() + M);
        ep.bias_per_row = true;
      } else {
        if (broadcast_shapes({C->shape, y.shape}) != y.shape)
          fail("C of shape ", shape_str(C->shape), " does not broadcast to ", shape_str(y.shape));
        const float zero = 0.f;
        binary_f32(VBinary::add, C->ptr<float>(), C->shape, &zero, {}, y.ptr<float>(), y.shape, ctx.pool);
        beta_c = beta_;
      }
      if (!bias.empty() && beta_ != 1.f && C->numel() != 1)
        for (float& v : bias) v *= beta_;
      if (!bias.empty()) ep.bias = bias.data();
    }
    const bool late = res && res->shape != y.shape;
    if (res && !late) {
      if (res->dtype != DType::f32) fail("residual must be float");
      ep.residual = res->ptr<float>();
      ep.ld_residual = N;
    }
    if (late) ep.post_act = Act::none;
    f32_gemm(M, N, K, a, b, y.ptr<float>(), N, ep, ctx.pool, beta_c);
    if (late) late_residual(ep_, y, *res, ctx.pool);
    out[0] = std::move(y);
  }

  int64_t weight_bytes() const override { return packed_bytes(packed_b_); }
  std::string describe() const override {
    return std::string("gemm ") + f32_gemm_kernel().name + (packed_b_ ? " packed-B" : "") +
           fused_suffix(ep_, residual_input_ >= 0);
  }

 private:
  Epilogue ep_;
  int residual_input_;
  float alpha_ = 1.f, beta_ = 1.f;
  bool trans_a_ = false, trans_b_ = false;
  std::shared_ptr<PackedB> packed_b_;
  Shape b_shape_;
};

template <bool kFused>
std::unique_ptr<Kernel> make_gemm(const KernelInit& init) {
  if (init.num_inputs() < 2 || init.num_outputs() != 1) return nullptr;
  if (!kFused && init.num_inputs() > 3) return nullptr;
  for (int i = 0; i < init.num_inputs(); ++i)
    if (init.has_input(i) && init.input_dtypes[i] != DType::f32) return nullptr;
  Epilogue ep;
  if (kFused && !fused_epilogue(init.attrs, &ep)) return nullptr;
  return std::make_unique<GemmKernel>(init, ep, kFused && init.has_input(3) ? 3 : -1);
}
SLIVER_REGISTER_KERNEL("Gemm", make_gemm<false>);
SLIVER_REGISTER_KERNEL("sliver:FusedGemm", make_gemm<true>);

// ---- MatMul ----

class MatMulKernel final : public Kernel {
 public:
  MatMulKernel(const KernelInit& init, const Epilogue& ep, int bias_input, int residual_input)
      : ep_(ep), bias_input_(bias_input), residual_input_(residual_input) {
    if (init.is_const(1) && init.const_inputs[1].rank() >= 1) {
      const Tensor& b = init.const_inputs[1];
      b_shape_ = b.shape;
      const int64_t k = b.rank() == 1 ? b.shape[0] : b.shape[b.rank() - 2];
      const int64_t n = b.rank() == 1 ? 1 : b.shape.back();
      const int64_t batches = k * n != 0 ? b.numel() / (k * n) : 0;
      for (int64_t i = 0; i < batches; ++i)
        packed_b_.push_back(pack_b(k, n, b.ptr<float>() + i * k * n, n, false));
    }
    if (bias_input >= 0 && init.is_const(bias_input)) bias_ = init.const_inputs[bias_input];
  }

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& A = need(in, 0);
    const Tensor& B = need(in, 1);
    const Tensor* bias = bias_.defined() ? &bias_ : (bias_input_ >= 0 ? opt(in, bias_input_) : nullptr);
    const Tensor* res = residual_input_ >= 0 ? opt(in, residual_input_) : nullptr;
    if (A.rank() < 1 || B.rank() < 1) fail("MatMul operands must have rank >= 1");
    if (A.dtype != DType::f32 || B.dtype != DType::f32) fail("MatMul operands must be float");
    const bool a_vec = A.rank() == 1, b_vec = B.rank() == 1;
    const int64_t M = a_vec ? 1 : A.shape[A.rank() - 2], K = A.shape.back();
    const int64_t KB = b_vec ? B.shape[0] : B.shape[B.rank() - 2], N = b_vec ? 1 : B.shape.back();
    if (K != KB) fail("inner dimensions differ: A ", shape_str(A.shape), ", B ", shape_str(B.shape));
    const Shape a_batch(A.shape.begin(), A.shape.end() - (a_vec ? 1 : 2));
    const Shape b_batch(B.shape.begin(), B.shape.end() - (b_vec ? 1 : 2));
    const Shape batch = broadcast_shapes({a_batch, b_batch});
    Shape yshape = batch;
    if (!a_vec) yshape.push_back(M);
    if (!b_vec) yshape.push_back(N);
    Tensor y = Tensor::empty(DType::f32, yshape);
    if (!packed_b_.empty() && B.shape != b_shape_) fail("B changed shape");

    Epilogue ep = ep_;
    if (bias) {
      if (bias->dtype != DType::f32 || bias->numel() != N)
        fail("bias must be float[", N, "], got ", shape_str(bias->shape));
      ep.bias = bias->ptr<float>();
    }
    const bool late = res && res->shape != yshape;
    if (res && !late) {
      if (res->dtype != DType::f32) fail("residual must be float");
      ep.residual = res->ptr<float>();
      ep.ld_residual = N;
    }
    if (late) ep.post_act = Act::none;

    const int64_t nb = shape_numel(batch);
    const int64_t b_mats = shape_numel(b_batch);
    if (y.numel() > 0) {
      if (b_mats == 1 && shape_numel(a_batch) == nb) {
        // B is one matrix: A's batches stack into one (nb*M x K) product.
        gemm(nb * M, N, K, A.ptr<float>(), B.ptr<float>(), 0, y.ptr<float>(), ep, ctx.pool);
      } else {
        const std::vector<int64_t> sa = broadcast_strides(a_batch, batch);
        const std::vector<int64_t> sb = broadcast_strides(b_batch, batch);
        auto one = [&](int64_t i, ThreadPool* pool) {
          int64_t ia = 0, ib = 0, r = i;
          for (size_t d = batch.size(); d-- > 0;) {
            const int64_t idx = r % batch[d];
            r /= batch[d];
            ia += idx * sa[d];
            ib += idx * sb[d];
          }
          Epilogue e = ep;
          if (e.residual) e.residual += i * M * N;
          gemm(M, N, K, A.ptr<float>() + ia * M * K, B.ptr<float>() + ib * K * N, ib,
               y.ptr<float>() + i * M * N, e, pool);
        };
        if (static_cast<double>(M) * N * K < kSmallGemmMacs && nb > 1) {
          parallel_for(ctx.pool, nb, static_cast<double>(M) * N * K, [&](int64_t b0, int64_t b1) {
            for (int64_t i = b0; i < b1; ++i) one(i, nullptr);
          });
        } else {
          for (int64_t i = 0; i < nb; ++i) one(i, ctx.pool);
        }
      }
    }
    if (late) late_residual(ep_, y, *res, ctx.pool);
    out[0] = std::move(y);
  }

  int64_t weight_bytes() const override { return packed_bytes(packed_b_); }
  std::string describe() const override {
    return std::string("matmul ") + f32_gemm_kernel().name + (packed_b_.empty() ? "" : " packed-B") +
           fused_suffix(ep_, residual_input_ >= 0);
  }

 private:
  // One (m x k) * (k x n) product; b_index selects the packed copy of B when there is one.
  void gemm(int64_t m, int64_t n, int64_t k, const float* a, const float* b, int64_t b_index,
            float* y, const Epilogue& ep, ThreadPool* pool) const {
    GemmOperandA oa;
    oa.data = a;
    oa.ld = k;
    GemmOperandB ob;
    if (!packed_b_.empty()) {
      ob.packed = packed_b_[b_index].get();
    } else {
      ob.data = b;
      ob.ld = n;
    }
    f32_gemm(m, n, k, oa, ob, y, n, ep, pool);
  }

  Epilogue ep_;
  int bias_input_, residual_input_;
  Shape b_shape_;
  std::vector<std::shared_ptr<PackedB>> packed_b_;
  Tensor bias_;
};

template <bool kFused>
std::unique_ptr<Kernel> make_matmul(const KernelInit& init) {
  if (init.num_inputs() < 2 || init.num_outputs() != 1) return nullptr;
  if (!kFused && init.num_inputs() != 2) return nullptr;
  for (int i = 0; i < init.num_inputs(); ++i)
    if (init.has_input(i) && init.input_dtypes[i] != DType::f32) return nullptr;
  Epilogue ep;
  if (kFused && !fused_epilogue(init.attrs, &ep)) return nullptr;
  return std::make_unique<MatMulKernel>(init, ep, kFused ? 2 : -1,
                                        kFused && init.has_input(3) ? 3 : -1);
}
SLIVER_REGISTER_KERNEL("MatMul", make_matmul<false>);
SLIVER_REGISTER_KERNEL("sliver:FusedMatMul", make_matmul<true>);

}  // namespace
}  // namespace sliver::ops
