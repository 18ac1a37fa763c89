// LSTM and GRU (FP32, constant weights), the recurrent layers of OCR and speech models.
//
// The input projection of every time step is one packed GEMM (X [T*B, I] x W^T, the biases that
// do not depend on the state folded into its epilogue); each step then multiplies the hidden
// state by the packed recurrence weights (a second GEMM) and runs the gates' pointwise math on
// whole vectors. A bidirectional layer runs its two directions as two tasks. sequence_lens is
// honoured the way onnxruntime does: batch entry b runs steps [0, len_b) (backwards from
// len_b - 1 in reverse), its Y rows past len_b are zero and Y_h / Y_c hold its last step (zero
// when len_b = 0).
// Attributes the kernels do not implement (activations other than the defaults, input_forget)
// decline the node, which then runs on the reference fallback.
//
// com.microsoft DynamicQuantizeLSTM (onnxruntime's quantize_dynamic of an LSTM) runs here too:
// its 8-bit W [D, I, 4H] and R [D, H, 4H] are dequantized once (per-direction or per-column
// scale and zero point) and packed like float weights, and each GEMM's activations (X once,
// every step's hidden state) are quantized to uint8 with dynamic per-tensor parameters and
// dequantized before the product, as onnxruntime's kernel quantizes them: results equal exact
// integer sums up to float rounding (ops/contrib_rnn.py is the reference; onnxruntime's own
// differs where its u8s8 pair sums saturate).
#include <algorithm>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "ops/common.h"
#include "ops/dynamic_quant.h"
#include "sliver/gemm.h"
#include "sliver/thread_pool.h"
#include "../ukernels/f32_vunary/f32_vunary.h"

namespace sliver::ops {
namespace {

enum class Cell { lstm, gru };

struct Dirs {
  int count = 1;
  bool reverse_first = false;  // direction == "reverse"
  bool reverse(int d) const { return d == 1 || reverse_first; }
};

// Whether `activations` is absent or the default list repeated per direction.
bool default_activations(const Attrs& a, const std::vector<std::string>& dflt, int dirs) {
  if (!a.has("activations")) return true;
  const auto* names = std::get_if<std::vector<std::string>>(&a.values.at("activations"));
  if (!names || names->size() != dflt.size() * dirs) return false;
  for (size_t i = 0; i < names->size(); ++i)
    if ((*names)[i] != dflt[i % dflt.size()]) return false;
  return true;
}

class RecurrentKernel final : public Kernel {
 public:
  RecurrentKernel(Cell cell, const KernelInit& init, Dirs dirs, int64_t hidden, bool quantized)
      : cell_(cell),
        quantized_(quantized),
        dirs_(dirs),
        H_(hidden),
        G_(cell == Cell::lstm ? 4 : 3),
        layout_(init.attrs.get_int("layout", 0)),
        clip_(static_cast<float>(init.attrs.get_float("clip", 0.0))),
        linear_before_reset_(init.attrs.get_int("linear_before_reset", 0) != 0),
        name_(init.node_name) {
    const Tensor& W = init.const_inputs[1];
    const Tensor& R = init.const_inputs[2];
    I_ = W.shape[quantized ? 1 : 2];
    const int64_t GH = G_ * H_;
    const Tensor* B = init.is_const(3) ? &init.const_inputs[3] : nullptr;
    const Tensor* P = cell == Cell::lstm && init.is_const(7) ? &init.const_inputs[7] : nullptr;
    for (int d = 0; d < dirs_.count; ++d) {
      Direction dir;
      if (quantized) {
        const std::vector<float> w = dequantize_weight(init, 1, 8, 9, d);
        const std::vector<float> r = dequantize_weight(init, 2, 10, 11, d);
        dir.w = pack_b(I_, GH, w.data(), GH, /*trans_b=*/false);
        dir.r = pack_b(H_, GH, r.data(), GH, false);
      } else {
        dir.w = pack_b(I_, GH, W.ptr<float>() + d * GH * I_, I_, /*trans_b=*/true);
        const float* r = R.ptr<float>() + d * GH * H_;
        const bool split = cell == Cell::gru && !linear_before_reset_;
        dir.r = pack_b(H_, split ? 2 * H_ : GH, r, H_, true);
        if (split) dir.r_h = pack_b(H_, H_, r + 2 * H_ * H_, H_, true);
      }
      dir.x_bias.assign(GH, 0.f);
      dir.r_bias.assign(GH, 0.f);
      if (B) {
        const float* wb = B->ptr<float>() + d * 2 * GH;
        const float* rb = wb + GH;
        for (int64_t j = 0; j < GH; ++j) {
          // GRU with linear_before_reset: the h gate's recurrence bias sits inside r * (...).
          const bool inside = cell == Cell::gru && linear_before_reset_ && j >= 2 * H_;
          dir.x_bias[j] = wb[j] + (inside ? 0.f : rb[j]);
          if (inside) dir.r_bias[j] = rb[j];
        }
      }
      if (P) dir.peep.assign(P->ptr<float>() + d * 3 * H_, P->ptr<float>() + (d + 1) * 3 * H_);
      dirs_data_.push_back(std::move(dir));
    }
  }

  std::string describe() const override {
    return std::string(cell_ == Cell::lstm ? "LSTM" : "GRU") + " packed f32_gemm x" +
           std::to_string(dirs_.count) + " directions" +
           (quantized_ ? ", dequantized weights, uint8 activations" : "");
  }
  int64_t weight_bytes() const override {
    int64_t n = 0;
    for (const Direction& d : dirs_data_) n += packed_bytes(d.w) + packed_bytes(d.r) + packed_bytes(d.r_h);
    return n;
  }

  void run(RunContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const char* op = cell_ == Cell::lstm ? "LSTM" : "GRU";
    const Tensor& x = need(in, 0);
    if (x.dtype != DType::f32 || x.rank() != 3 || x.shape[2] != I_)
      fail(op, " '", name_, "': X ", shape_str(x.shape), " must be float [",
           layout_ ? "batch, seq" : "seq, batch", ", ", I_, "]");
    const int64_t T = x.shape[layout_ ? 1 : 0], Bn = x.shape[layout_ ? 0 : 1];
    const int D = dirs_.count;
    std::vector<int64_t> lens(Bn, T);
    bool full = true;
    if (const Tensor* sl = opt(in, 4)) {
      const std::vector<int64_t> v = read_ints(*sl, "sequence_lens");
      if (static_cast<int64_t>(v.size()) != Bn)
        fail(op, " '", name_, "': sequence_lens has ", v.size(), " values for batch ", Bn);
      for (int64_t b = 0; b < Bn; ++b) {
        if (v[b] < 0 || v[b] > T)
          fail(op, " '", name_, "': sequence_lens[", b, "] = ", v[b], " outside [0, ", T, "]");
        lens[b] = v[b];
        full = full && v[b] == T;
      }
    }
    const Shape state_shape = layout_ ? Shape{Bn, D, H_} : Shape{D, Bn, H_};
    const Tensor* h0 = opt(in, 5);
    const Tensor* c0 = cell_ == Cell::lstm ? opt(in, 6) : nullptr;
    for (const Tensor* s : {h0, c0})
      if (s && (s->dtype != DType::f32 || s->shape != state_shape))
        fail(op, " '", name_, "': initial state ", shape_str(s->shape), " must be float ",
             shape_str(state_shape));

    Tensor y = full ? Tensor::empty(DType::f32, layout_ ? Shape{Bn, T, D, H_} : Shape{T, D, Bn, H_})
                    : Tensor::zeros(DType::f32, layout_ ? Shape{Bn, T, D, H_} : Shape{T, D, Bn, H_});
    Tensor yh = Tensor::empty(DType::f32, state_shape);
    Tensor yc = cell_ == Cell::lstm ? Tensor::empty(DType::f32, state_shape) : Tensor();
    // State index (d, b) in the [D, B, H] or [B, D, H] layout.
    auto state_at = [&](int d, int64_t b) { return (layout_ ? b * D + d : d * Bn + b) * H_; };
    for (int d = 0; d < D; ++d)
      for (int64_t b = 0; b < Bn; ++b) {
        const int64_t o = state_at(d, b);
        float* ph = yh.ptr<float>() + o;
        if (h0) std::memcpy(ph, h0->ptr<float>() + o, H_ * sizeof(float));
        else std::fill(ph, ph + H_, 0.f);
        if (cell_ == Cell::lstm) {
          float* pc = yc.ptr<float>() + o;
          if (c0) std::memcpy(pc, c0->ptr<float>() + o, H_ * sizeof(float));
          else std::fill(pc, pc + H_, 0.f);
        }
      }
    if (T > 0 && Bn > 0) {
      auto one = [&](int64_t d) {
        run_direction(static_cast<int>(d), x.ptr<float>(), T, Bn, lens, y.ptr<float>(),
                      yh.ptr<float>(), cell_ == Cell::lstm ? yc.ptr<float>() : nullptr, state_at,
                      D > 1 ? nullptr : ctx.pool);
      };
      if (D > 1 && ctx.pool) ctx.pool->parallel_tasks(D, one);
      else for (int d = 0; d < D; ++d) one(d);
    }
    out[0] = std::move(y);
    if (out.size() > 1) out[1] = std::move(yh);
    if (out.size() > 2 && cell_ == Cell::lstm) out[2] = std::move(yc);
  }

 private:
  struct Direction {
    std::shared_ptr<PackedB> w, r, r_h;  // W^T [I, GH]; R^T [H, GH] (GRU lbr=0: z|r, then h)
    std::vector<float> x_bias, r_bias;   // added to the projection / to the recurrence
    std::vector<float> peep;             // LSTM P: i, o, f (empty: none)
  };

  // (q(x) - zp) * scale for x[0, n) into out (n floats, then n codes), with onnxruntime's
  // dynamic uint8 parameters for the whole buffer; returns out.
  static const float* fake_quantize(const float* x, int64_t n, float* out, ThreadPool* pool) {
    const q::DynamicParams p = q::dynamic_params(pool, x, n, q::DynamicRule::onnxruntime);
    uint8_t* codes = reinterpret_cast<uint8_t*>(out + n);
    q::quantize_u8(pool, x, n, p, codes);
    for (int64_t i = 0; i < n; ++i)
      out[i] = static_cast<float>(int32_t{codes[i]} - p.zero_point) * p.scale;
    return out;
  }

  // DynamicQuantizeLSTM's weight input `wi` for direction d ([D, K, GH] codes) as float
  // [K, GH]: (w - zero_point) * scale, both per direction ([D]) or per column ([D, GH]).
  std::vector<float> dequantize_weight(const KernelInit& init, int wi, int si, int zi,
                                       int d) const {
    const Tensor& w = init.const_inputs[wi];
    const Tensor& scale = init.const_inputs[si];
    const Tensor* zp = init.is_const(zi) ? &init.const_inputs[zi] : nullptr;
    const int64_t K = w.shape[1], GH = w.shape[2];
    const bool per_col = scale.numel() == dirs_.count * GH;
    const bool is_signed = w.dtype == DType::i8;
    auto code = [&](const Tensor& t, int64_t i) {
      return is_signed ? int32_t{t.ptr<int8_t>()[i]} : int32_t{t.ptr<uint8_t>()[i]};
    };
    std::vector<float> out(static_cast<size_t>(K * GH));
    for (int64_t j = 0; j < GH; ++j) {
      const int64_t c = per_col ? d * GH + j : d;
      const float sc = scale.ptr<float>()[c];
      const int32_t z = zp ? code(*zp, c) : 0;
      for (int64_t k = 0; k < K; ++k)
        out[k * GH + j] = static_cast<float>(code(w, (d * K + k) * GH + j) - z) * sc;
    }
    return out;
  }

  void clip(float* v, int64_t n) const {
    if (clip_ > 0.f)
      for (int64_t i = 0; i < n; ++i) v[i] = std::min(std::max(v[i], -clip_), clip_);
  }

  template <class StateAt>
  void run_direction(int d, const float* x, int64_t T, int64_t Bn,
                     const std::vector<int64_t>& lens, float* y, float* yh, float* yc,
                     const StateAt& state_at, ThreadPool* pool) const {
    const Direction& dir = dirs_data_[d];
    const int64_t H = H_, GH = G_ * H_, D = dirs_.count;
    const bool rev = dirs_.reverse(d);
    // Scratch (thread_scratch: kept per thread, no allocation per run): the projection of every
    // (t, b) row of X in X's row order; the step's gates; the hidden (and cell) state per batch
    // row, contiguous for the step GEMM, r * h for GRU, and one row of tanh(c).
    float* xp = thread_scratch(0, static_cast<size_t>(T * Bn * GH));
    float* g = thread_scratch(1, static_cast<size_t>(Bn * GH));
    float* h = thread_scratch(2, static_cast<size_t>(3 * Bn * H + H));
    float* c = h + Bn * H;
    float* rh = c + Bn * H;
    float* tmp = rh + Bn * H;
    Epilogue ep;
    ep.bias = dir.x_bias.data();
    // DynamicQuantizeLSTM: products take activations through uint8 codes (scratch slot 3).
    // (n floats, then n codes: 5 n / 4 floats.)
    const int64_t qn = std::max(T * Bn * I_, Bn * H);
    float* qa = quantized_ ? thread_scratch(3, static_cast<size_t>(qn + qn / 4 + 16)) : nullptr;
    if (qa) x = fake_quantize(x, T * Bn * I_, qa, pool);
    GemmOperandA a{x, I_, false, nullptr};
    GemmOperandB wb{nullptr, 0, false, dir.w.get()};
    f32_gemm(T * Bn, GH, I_, a, wb, xp, GH, ep, pool);
    auto xrow = [&](int64_t t, int64_t b) { return (layout_ ? b * T + t : t * Bn + b) * GH; };
    auto yrow = [&](int64_t t, int64_t b) {
      return (layout_ ? (b * T + t) * D + d : (t * D + d) * Bn + b) * H;
    };

    for (int64_t b = 0; b < Bn; ++b) {
      std::memcpy(h + b * H, yh + state_at(d, b), H * sizeof(float));
      if (yc) std::memcpy(c + b * H, yc + state_at(d, b), H * sizeof(float));
    }
    const F32VUnaryFn sigmoid = f32_vunary(VUnary::sigmoid), tanh = f32_vunary(VUnary::tanh);
    const F32VUnaryParams none{};
    const int64_t steps = *std::max_element(lens.begin(), lens.end());
    Epilogue rec;
    rec.bias = dir.r_bias.data();
    GemmOperandB rb{nullptr, 0, false, dir.r.get()};
    for (int64_t s = 0; s < steps; ++s) {
      const GemmOperandA ha{qa ? fake_quantize(h, Bn * H, qa, pool) : h, H, false, nullptr};
      if (cell_ == Cell::lstm || linear_before_reset_) {
        f32_gemm(Bn, GH, H, ha, rb, g, GH, rec, pool);
      } else {
        f32_gemm(Bn, 2 * H, H, ha, rb, g, GH, Epilogue{}, pool);
      }
      for (int64_t b = 0; b < Bn; ++b) {
        if (s >= lens[b]) continue;
        const int64_t t = rev ? lens[b] - 1 - s : s;
        float* gb = g + b * GH;
        const float* xb = xp + xrow(t, b);
        float* hb = h + b * H;
        if (cell_ == Cell::lstm) {
          // gates i, o, f, c
          for (int64_t j = 0; j < GH; ++j) gb[j] += xb[j];
          float* gi = gb;
          float* go = gb + H;
          float* gf = gb + 2 * H;
          float* gc = gb + 3 * H;
          float* cb = c + b * H;
          if (!dir.peep.empty())
            for (int64_t j = 0; j < H; ++j) {
              gi[j] += dir.peep[j] * cb[j];
              gf[j] += dir.peep[2 * H + j] * cb[j];
            }
          clip(gi, H);
          clip(gf, H);
          clip(gc, H);
          sigmoid(H, gi, gi, none);
          sigmoid(H, gf, gf, none);
          tanh(H, gc, gc, none);
          for (int64_t j = 0; j < H; ++j) cb[j] = gf[j] * cb[j] + gi[j] * gc[j];
          if (!dir.peep.empty())
            for (int64_t j = 0; j < H; ++j) go[j] += dir.peep[H + j] * cb[j];
          clip(go, H);
          sigmoid(H, go, go, none);
          tanh(H, cb, tmp, none);
          for (int64_t j = 0; j < H; ++j) hb[j] = go[j] * tmp[j];
        } else {
          // gates z, r, h
          float* gz = gb;
          float* gr = gb + H;
          float* gh = gb + 2 * H;
          for (int64_t j = 0; j < 2 * H; ++j) gb[j] += xb[j];
          clip(gb, 2 * H);
          sigmoid(2 * H, gb, gb, none);
          if (linear_before_reset_) {
            for (int64_t j = 0; j < H; ++j) gh[j] = xb[2 * H + j] + gr[j] * gh[j];
          } else {
            // (r * h_prev) R_h^T: one row at a time, as r differs per batch row
            float* rhb = rh + b * H;
            for (int64_t j = 0; j < H; ++j) rhb[j] = gr[j] * hb[j];
            const GemmOperandA ra{rhb, H, false, nullptr};
            const GemmOperandB rhw{nullptr, 0, false, dir.r_h.get()};
            f32_gemm(1, H, H, ra, rhw, gh, H, Epilogue{}, nullptr);
            for (int64_t j = 0; j < H; ++j) gh[j] += xb[2 * H + j];
          }
          clip(gh, H);
          tanh(H, gh, gh, none);
          for (int64_t j = 0; j < H; ++j) hb[j] = (1.f - gz[j]) * gh[j] + gz[j] * hb[j];
        }
        std::memcpy(y + yrow(t, b), hb, H * sizeof(float));
      }
    }
    // An entry that ran no step reports zero states (as onnxruntime does), not its initial ones.
    for (int64_t b = 0; b < Bn; ++b) {
      if (lens[b] == 0) {
        std::fill(h + b * H, h + (b + 1) * H, 0.f);
        if (yc) std::fill(c + b * H, c + (b + 1) * H, 0.f);
      }
      std::memcpy(yh + state_at(d, b), h + b * H, H * sizeof(float));
      if (yc) std::memcpy(yc + state_at(d, b), c + b * H, H * sizeof(float));
    }
  }

  Cell cell_;
  bool quantized_;  // DynamicQuantizeLSTM
  Dirs dirs_;
  int64_t H_, G_, I_ = 0;
  int64_t layout_;
  float clip_;
  bool linear_before_reset_;
  std::string name_;
  std::vector<Direction> dirs_data_;
};

// The checks LSTM, GRU and DynamicQuantizeLSTM share: X float, direction, default activations,
// no input_forget, clip >= 0, constant B [D, 2 G H] and P [D, 3 H] if present. Sets dirs.
bool accepts_common(const KernelInit& init, Cell cell, int64_t H, Dirs* dirs) {
  const int64_t G = cell == Cell::lstm ? 4 : 3;
  if (in_dtype(init, 0) != DType::f32) return false;
  const std::string direction = init.attrs.get_string("direction", "forward");
  if (direction == "bidirectional") dirs->count = 2;
  else if (direction == "reverse") dirs->reverse_first = true;
  else if (direction != "forward") return false;
  const std::vector<std::string> dflt =
      cell == Cell::lstm ? std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"}
                         : std::vector<std::string>{"Sigmoid", "Tanh"};
  if (!default_activations(init.attrs, dflt, dirs->count)) return false;
  if (init.attrs.get_int("input_forget", 0) != 0) return false;
  if (init.attrs.get_float("clip", 0.0) < 0) return false;
  if (H <= 0 || init.attrs.get_int("hidden_size", H) != H) return false;
  if (init.has_input(3)) {
    if (!init.is_const(3)) return false;
    const Tensor& B = init.const_inputs[3];
    if (B.dtype != DType::f32 || B.numel() != dirs->count * 2 * G * H) return false;
  }
  if (cell == Cell::lstm && init.has_input(7)) {
    if (!init.is_const(7)) return false;
    const Tensor& P = init.const_inputs[7];
    if (P.dtype != DType::f32 || P.numel() != dirs->count * 3 * H) return false;
  }
  return true;
}

template <Cell kCell>
std::unique_ptr<Kernel> make_recurrent(const KernelInit& init) {
  const int G = kCell == Cell::lstm ? 4 : 3;
  if (init.num_inputs() < 3 || !init.is_const(1) || !init.is_const(2)) return nullptr;
  const Tensor& W = init.const_inputs[1];
  const Tensor& R = init.const_inputs[2];
  if (W.dtype != DType::f32 || R.dtype != DType::f32 || W.rank() != 3 || R.rank() != 3)
    return nullptr;
  const int64_t H = R.shape[2];
  Dirs dirs;
  if (!accepts_common(init, kCell, H, &dirs)) return nullptr;
  if (W.shape[0] != dirs.count || R.shape[0] != dirs.count || W.shape[1] != G * H ||
      R.shape[1] != G * H)
    return nullptr;
  return std::make_unique<RecurrentKernel>(kCell, init, dirs, H, false);
}

// DynamicQuantizeLSTM's own inputs: 8-bit W [D, I, 4H] and R [D, H, 4H] with float scales and
// same-typed zero points of D or D * 4H values.
std::unique_ptr<Kernel> make_dynamic_quantize_lstm(const KernelInit& init) {
  if (init.num_inputs() < 11) return nullptr;
  for (int i : {1, 2, 8, 10})
    if (!init.is_const(i)) return nullptr;
  for (int i : {9, 11})
    if (init.has_input(i) && !init.is_const(i)) return nullptr;
  const Tensor& W = init.const_inputs[1];
  const Tensor& R = init.const_inputs[2];
  for (const Tensor* t : {&W, &R})
    if ((t->dtype != DType::i8 && t->dtype != DType::u8) || t->rank() != 3) return nullptr;
  const int64_t H = R.shape[1], GH = 4 * H;
  Dirs dirs;
  if (!accepts_common(init, Cell::lstm, H, &dirs)) return nullptr;
  if (W.shape[0] != dirs.count || R.shape[0] != dirs.count || W.shape[2] != GH ||
      R.shape[2] != GH)
    return nullptr;
  for (auto [si, zi, wt] : {std::tuple{8, 9, W.dtype}, std::tuple{10, 11, R.dtype}}) {
    const Tensor& scale = init.const_inputs[si];
    const int64_t n = scale.numel();
    if (scale.dtype != DType::f32 || (n != dirs.count && n != dirs.count * GH)) return nullptr;
    if (init.is_const(zi)) {
      const Tensor& zp = init.const_inputs[zi];
      if (zp.dtype != wt || zp.numel() != n) return nullptr;
    }
  }
  return std::make_unique<RecurrentKernel>(Cell::lstm, init, dirs, H, true);
}

SLIVER_REGISTER_KERNEL("LSTM", make_recurrent<Cell::lstm>);
SLIVER_REGISTER_KERNEL("GRU", make_recurrent<Cell::gru>);
SLIVER_REGISTER_KERNEL("com.microsoft:DynamicQuantizeLSTM", make_dynamic_quantize_lstm);

}  // namespace
}  // namespace sliver::ops
