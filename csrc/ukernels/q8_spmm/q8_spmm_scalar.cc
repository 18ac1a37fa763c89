// q8_spmm_<NT>x<R>_scalar: portable twins of the AVX2 INT8 sparse-weight kernels (same contract
// and the same exact int32 sums, see sparse.h), the int16 panel packers and the per-channel
// epilogue (requant.h's reference requantize(), which the AVX2 epilogue must match bit for bit).
#include <cstdint>

#include "sliver/requant.h"
#include "sliver/sparse.h"

namespace sliver {
namespace {

// Panel position of lane j: tiles of 16 or more store every 16 lanes as 0-3 8-11 4-7 12-15.
constexpr int64_t panel_pos(int NT, int64_t j) {
  if (NT < 16) return j;
  const int64_t g = (j >> 2) & 3;
  return (j & ~int64_t{15}) | ((g == 1 ? 2 : g == 2 ? 1 : g) << 2) | (j & 3);
}

// Panel position of lane j in the kr = 4 (uint8) layout: NT = 32 stores byte groups of 4 lanes
// in the order 0 2 4 6 1 3 5 7.
constexpr int64_t quad_pos(int NT, int64_t j) {
  if (NT != 32) return j;
  const int64_t group = j >> 2, slot = (group & 1) ? 4 + (group >> 1) : group >> 1;
  return slot * 4 + (j & 3);
}

// Element (k, lane j) of a panel in the layout for KR (sparse.h).
template <int NT, int KR>
int32_t panel_at(const int16_t* x, int64_t k, int64_t j) {
  if (KR == 4) return reinterpret_cast<const uint8_t*>(x)[k * NT + quad_pos(NT, j)];
  if (KR == kQ8AlignedQuads)
    return reinterpret_cast<const uint8_t*>(x)[(k & ~int64_t{3}) * NT + 4 * j + (k & 3)];
  if (KR == 2 && NT > 1) return x[(k & ~int64_t{1}) * NT + 2 * j + (k & 1)];
  return x[k * NT + panel_pos(NT, j)];
}

template <int NT, int R, int KR, class W>
void run_typed(const Q8SpmmArgs& p) {
  const W* w = static_cast<const W*>(p.w);
  int64_t e0 = p.first;
  for (int64_t b = 0; b < p.nblocks; ++b) {
    const int64_t row0 = b * R;
    uint32_t acc[R][NT];  // wraps mod 2^32 like the int32 lanes
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < NT; ++j)
        acc[r][j] = p.acc_in ? static_cast<uint32_t>(p.acc_in[(row0 + r) * NT + j]) : 0u;
    int64_t base = 0;  // the input steps' running base (sparse.h)
    const int64_t e1 = e0 + p.count[b];
    for (int64_t e = e0; e < e1; ++e) {
      int64_t k1, k2;
      if (KR == kQ8AlignedQuads) {  // the group's first pair takes the step
        k1 = (e - e0) % 2 ? base + 2 : base + 4 * int64_t{p.kidx[e / 2]};
        k2 = k1 + 1;
        base = k1 & ~int64_t{3};
      } else if (KR == 2) {
        k1 = base + 2 * int64_t{p.kidx[e]};
        k2 = k1 + 1;
        base = k1;
      } else {
        k1 = base + p.kidx[2 * e];
        k2 = base + p.kidx[2 * e + 1];
        base = k2;
      }
      for (int r = 0; r < R; ++r) {
        const int32_t w1 = w[(e * R + r) * 2], w2 = w[(e * R + r) * 2 + 1];
        for (int j = 0; j < NT; ++j)
          acc[r][j] += static_cast<uint32_t>(w1 * panel_at<NT, KR>(p.x, k1, j) +
                                             w2 * panel_at<NT, KR>(p.x, k2, j));
      }
    }
    e0 = e1;
    for (int r = 0; r < R && row0 + r < p.rows; ++r)
      for (int64_t j = 0; j < p.nt; ++j)
        p.y[(row0 + r) * p.ldy + j] = static_cast<int32_t>(acc[r][j]);
  }
}

template <int NT, int R, int KR>
void run(const Q8SpmmArgs& p) {
  if (p.wide) run_typed<NT, R, KR, int16_t>(p);
  else run_typed<NT, R, KR, int8_t>(p);
}

int16_t centred(uint8_t v, bool is_signed, int32_t zp) {
  return static_cast<int16_t>((is_signed ? int32_t{static_cast<int8_t>(v)} : int32_t{v}) - zp);
}

// kr = 4: raw bytes u (s8 with the sign bit flipped); padding lanes hold the zero point's.
void pack_quads(int NT, int64_t kc, int64_t nt, const uint8_t* src, int64_t k_step,
                int64_t lane_step, bool is_signed, int32_t zp, uint8_t* dst) {
  const uint8_t flip = is_signed ? 0x80 : 0;
  for (int64_t k = 0; k < kc; ++k)
    for (int64_t j = 0; j < NT; ++j)
      dst[k * NT + quad_pos(NT, j)] =
          static_cast<uint8_t>((j < nt ? src[k * k_step + j * lane_step] : zp) ^ flip);
}

// kr = 8: groups of 4 rows as the bytes of each lane's word; rows past kc hold the zero point.
void pack_groups(int NT, int64_t kc, int64_t nt, const uint8_t* src, int64_t k_step,
                 int64_t lane_step, bool is_signed, int32_t zp, uint8_t* dst) {
  const uint8_t flip = is_signed ? 0x80 : 0;
  for (int64_t k = 0; k < (kc + 3) / 4 * 4; ++k)
    for (int64_t j = 0; j < NT; ++j)
      dst[(k & ~int64_t{3}) * NT + 4 * j + (k & 3)] = static_cast<uint8_t>(
          (j < nt && k < kc ? src[k * k_step + j * lane_step] : zp) ^ flip);
}

// Source element (k, j) at src[k * k_step + j * lane_step].
void pack(int NT, int kr, int64_t kc, int64_t nt, const uint8_t* src, int64_t k_step,
          int64_t lane_step, bool is_signed, int32_t zp, int16_t* dst) {
  if (kr == kQ8AlignedQuads)
    return pack_groups(NT, kc, nt, src, k_step, lane_step, is_signed, zp,
                       reinterpret_cast<uint8_t*>(dst));
  if (kr == 4)
    return pack_quads(NT, kc, nt, src, k_step, lane_step, is_signed, zp,
                      reinterpret_cast<uint8_t*>(dst));
  const int64_t rows = kr == 2 ? (kc + 1) / 2 * 2 : kc;  // kr = 2: the odd row's partner is 0
  for (int64_t k = 0; k < rows; ++k) {
    for (int64_t j = 0; j < NT; ++j) {
      const int16_t v =
          j < nt && k < kc ? centred(src[k * k_step + j * lane_step], is_signed, zp) : 0;
      if (kr == 2 && NT > 1) dst[(k & ~int64_t{1}) * NT + 2 * j + (k & 1)] = v;
      else dst[k * NT + panel_pos(NT, j)] = v;
    }
  }
}

void pack_rows(int NT, int kr, int64_t kc, int64_t nt, const uint8_t* src, int64_t ld,
               bool is_signed, int32_t zp, int16_t* dst) {
  pack(NT, kr, kc, nt, src, ld, 1, is_signed, zp, dst);
}

void pack_cols(int NT, int kr, int64_t kc, int64_t nt, const uint8_t* src, int64_t ld,
               bool is_signed, int32_t zp, int16_t* dst) {
  pack(NT, kr, kc, nt, src, 1, ld, is_signed, zp, dst);
}

}  // namespace

void q8_spmm_epilogue_scalar(const Q8ChannelEpilogue& p, const int32_t* acc, int64_t acc_stride,
                             int64_t rows, int64_t cols, void* y, int64_t ldy) {
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      const int64_t c = p.per_column ? j : i;
      const int32_t v = static_cast<int32_t>(static_cast<uint32_t>(acc[i * acc_stride + j]) +
                                             static_cast<uint32_t>(p.bias[c]));
      switch (p.output) {
        case QGemmOutput::int32:
          static_cast<int32_t*>(y)[i * ldy + j] = v;
          break;
        case QGemmOutput::quantized: {
          const int32_t q = requantize(v, p.scale[c], p.y_zero_point, p.qmin, p.qmax, p.rounding);
          if (p.y_type == DType::u8)
            static_cast<uint8_t*>(y)[i * ldy + j] = static_cast<uint8_t>(q);
          else
            static_cast<int8_t*>(y)[i * ldy + j] = static_cast<int8_t>(q);
          break;
        }
        case QGemmOutput::float32:
          static_cast<float*>(y)[i * ldy + j] =
              dequantize_acc(v, p.scale[c], p.float_bias ? p.float_bias + c : nullptr);
          break;
      }
    }
  }
}

#define SLIVER_SPMM_DEFINE_scalar(name, nt, r, kr) \
  void name(const Q8SpmmArgs& p) { run<nt, r, kr>(p); }
#define SLIVER_SPMM_DEFINE_avx2(name, nt, r, kr)
#define SLIVER_SPMM_DEFINE_avx512vnni(name, nt, r, kr)
#define SLIVER_Q8_SPMM_KERNEL(name, nt, r, kr, isa) SLIVER_SPMM_DEFINE_##isa(name, nt, r, kr)
#include "q8_spmm.inc"
#undef SLIVER_Q8_SPMM_KERNEL

const Q8SpmmHelpers kQ8SpmmHelpersScalar = {pack_rows, pack_cols, q8_spmm_epilogue_scalar};

}  // namespace sliver
