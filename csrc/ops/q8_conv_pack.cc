// Packing for the channels-last 8-bit conv kernels; see q8_conv_pack.h.
#include "ops/q8_conv_pack.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "sliver/error.h"
#include "ukernels/q8_conv/q8_wconv.h"

namespace sliver::ops::q {
namespace {

std::shared_ptr<int16_t> alloc_i16(int64_t n) {
  const size_t bytes = std::max<size_t>(64, (static_cast<size_t>(n) * 2 + 63) / 64 * 64);
  auto* p = static_cast<int16_t*>(std::aligned_alloc(64, bytes));
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, bytes);
  return std::shared_ptr<int16_t>(p, [](int16_t* q) { std::free(q); });
}

int32_t code(const uint8_t* w, DType t, int64_t i) {
  return t == DType::u8 ? int32_t{w[i]} : int32_t{static_cast<int8_t>(w[i])};
}

int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

}  // namespace

WconvWeights pack_wconv_weights(const uint8_t* w, DType w_type, int64_t oc, int64_t nseg,
                                int64_t run, const std::vector<int32_t>& zp) {
  SLIVER_CHECK(run >= 1 && nseg >= 1 && oc >= 1, "pack_wconv_weights: oc=", oc, " segments=",
               nseg, " run=", run);
  SLIVER_CHECK(zp.size() == 1 || static_cast<int64_t>(zp.size()) == oc,
               "pack_wconv_weights: ", zp.size(), " zero points for ", oc, " channels");
  WconvWeights pw;
  pw.oc = oc;
  pw.nseg = nseg;
  pw.run = run;
  pw.pairs = (run + 1) / 2;
  pw.data = alloc_i16(pw.panels() * pw.panel_elems());
  pw.colsum.assign(static_cast<size_t>(pw.panels() * 16), 0);
  pw.abssum.assign(static_cast<size_t>(oc), 0);
  for (int64_t n = 0; n < oc; ++n) {
    const int32_t z = zp[zp.size() == 1 ? 0 : n];
    const int64_t slot = q8_wconv_slot(n % 16, std::min<int64_t>(16, oc - n / 16 * 16));
    int16_t* col = pw.data.get() + (n / 16) * pw.panel_elems() + 2 * slot;
    for (int64_t s = 0; s < nseg; ++s)
      for (int64_t e = 0; e < run; ++e) {
        const int32_t v = code(w, w_type, (n * nseg + s) * run + e) - z;
        col[(s * pw.pairs + e / 2) * 32 + e % 2] = static_cast<int16_t>(v);
        pw.colsum[n] += v;
        pw.abssum[n] += std::abs(v);
      }
  }
  return pw;
}

DwconvWeights pack_dwconv_weights(const uint8_t* w, DType w_type, int64_t channels, int64_t ntaps,
                                  const std::vector<int32_t>& zp) {
  SLIVER_CHECK(channels >= 1 && ntaps >= 1, "pack_dwconv_weights: C=", channels, " taps=", ntaps);
  SLIVER_CHECK(zp.size() == 1 || static_cast<int64_t>(zp.size()) == channels,
               "pack_dwconv_weights: ", zp.size(), " zero points for ", channels, " channels");
  DwconvWeights pw;
  pw.channels = channels;
  pw.ntaps = ntaps;
  pw.pairs = (ntaps + 1) / 2;
  const int64_t blocks = (channels + 15) / 16;
  pw.data = alloc_i16(blocks * pw.pairs * 32);
  pw.colsum.assign(static_cast<size_t>(blocks * 16), 0);
  pw.abssum.assign(static_cast<size_t>(channels), 0);
  for (int64_t ch = 0; ch < channels; ++ch) {
    const int32_t z = zp[zp.size() == 1 ? 0 : ch];
    const int64_t ci = ch % 16;
    int16_t* blk = pw.data.get() + (ch / 16) * pw.pairs * 32 + (ci / 8) * 16 + 2 * (ci % 8);
    for (int64_t t = 0; t < ntaps; ++t) {
      const int32_t v = code(w, w_type, ch * ntaps + t) - z;
      blk[(t / 2) * 32 + (t % 2)] = static_cast<int16_t>(v);
      pw.colsum[ch] += v;
      pw.abssum[ch] += std::abs(v);
    }
  }
  return pw;
}

void prepare_conv_requant(int64_t columns, const std::vector<int32_t>& colsum,
                          const std::vector<int64_t>& abssum, const std::vector<int32_t>& bias,
                          DType x_type, int32_t x_zp, int32_t x_offset, float x_scale,
                          const std::vector<float>& w_scale, float y_scale, int32_t y_zp,
                          DType y_type, int32_t qmin, int32_t qmax, ConvRequantArrays* out) {
  const int64_t np = round16(columns);
  out->col_term.assign(static_cast<size_t>(np), 0);
  out->multiplier.assign(static_cast<size_t>(np), 0.0);
  out->multiplier_f32.assign(static_cast<size_t>(np), 0.f);
  for (int64_t n = 0; n < columns; ++n) {
    const uint32_t b = bias.empty() ? 0u : static_cast<uint32_t>(bias[n]);
    out->col_term[n] = static_cast<int32_t>(b - static_cast<uint32_t>(x_offset) *
                                                   static_cast<uint32_t>(colsum[n]));
    const float m = requant_multiplier(x_scale, w_scale[w_scale.size() == 1 ? 0 : n], y_scale);
    out->multiplier[n] = m;
    out->multiplier_f32[n] = m;
  }
  const RequantForm form = requant_form_for_columns(
      columns, abssum.data(), bias.empty() ? nullptr : bias.data(),
      max_centered_code(x_type == DType::i8, x_zp), out->multiplier_f32.data(), y_zp);
  Q8ConvRequant& rq = out->rq;
  rq.col_term = out->col_term.data();
  rq.multiplier = out->multiplier.data();
  rq.multiplier_f32 = out->multiplier_f32.data();
  rq.y_zero_point = y_zp;
  rq.qmin = qmin;
  rq.qmax = qmax;
  rq.y_signed = y_type == DType::i8;
  rq.form = form;
}

void to_wconv_slots(int64_t columns, ConvRequantArrays* a) {
  for (int64_t p0 = 0; p0 < columns; p0 += 16) {
    const int64_t nc = std::min<int64_t>(16, columns - p0);
    if (nc <= 8) continue;  // in order already
    const std::vector<int32_t> ct(a->col_term.begin() + p0, a->col_term.begin() + p0 + 16);
    const std::vector<double> m(a->multiplier.begin() + p0, a->multiplier.begin() + p0 + 16);
    const std::vector<float> f(a->multiplier_f32.begin() + p0, a->multiplier_f32.begin() + p0 + 16);
    for (int64_t j = 0; j < 16; ++j) {
      const int64_t s = p0 + q8_wconv_slot(j, nc);
      a->col_term[s] = ct[j];
      a->multiplier[s] = m[j];
      a->multiplier_f32[s] = f[j];
    }
  }
}

}  // namespace sliver::ops::q
