// Weights of the channels-last 8-bit conv kernels, packed once per node, and the per-call
// requantization arrays built from them (q8_conv_nhwc.h is the user).
//
// Both layouts hold w' = w - w_zp as int16 (ukernels/q8_conv/q8_wconv.h for dense convs,
// ukernels/q8_dwconv/q8_dwconv.h for depthwise ones). Packing also keeps, per output channel,
// the sum of w' (the input zero point's correction) and the sum of |w'|, which bounds every
// accumulator the layer can produce and so decides whether the short requantization form is
// exact (requant.h).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "sliver/requant.h"
#include "sliver/tensor.h"

namespace sliver::ops::q {

/// Int16 weight panels for the widened-image conv kernels (ukernels/q8_conv/q8_wconv.h): panel p
/// holds columns [16 p, 16 p + 16) in the kernels' slot order, as nseg segments of `pairs` int16
/// pairs.
struct WconvWeights {
  int64_t oc = 0, nseg = 0, run = 0, pairs = 0;  // run: values per segment; pairs = ceil(run / 2)
  std::shared_ptr<int16_t> data;
  std::vector<int32_t> colsum;  // [panels * 16] sum of w' (0 in padding)
  std::vector<int64_t> abssum;  // [oc] sum of |w'|

  int64_t panels() const { return (oc + 15) / 16; }
  int64_t panel_elems() const { return nseg * pairs * 32; }
  const int16_t* panel(int64_t p) const { return data.get() + p * panel_elems(); }
};

/// w: codes of w_type (u8 / i8) laid out [oc][nseg][run] (a segment: the weights of the run of
/// values a kernel row reads in the widened image). zp: 1 or oc values.
WconvWeights pack_wconv_weights(const uint8_t* w, DType w_type, int64_t oc, int64_t nseg,
                                int64_t run, const std::vector<int32_t>& zp);

/// Int16 tap-pair weights for the depthwise kernels.
struct DwconvWeights {
  int64_t channels = 0, ntaps = 0, pairs = 0;
  std::shared_ptr<int16_t> data;  // [ceil(C / 16)][pairs][32]
  std::vector<int32_t> colsum;    // [blocks * 16]
  std::vector<int64_t> abssum;    // [channels]
};

/// w: codes [channels][ntaps]; zp: 1 or `channels` values.
DwconvWeights pack_dwconv_weights(const uint8_t* w, DType w_type, int64_t channels, int64_t ntaps,
                                  const std::vector<int32_t>& zp);

/// The arrays behind one call's Q8ConvRequant.
struct ConvRequantArrays {
  std::vector<int32_t> col_term;
  std::vector<double> multiplier;
  std::vector<float> multiplier_f32;
  Q8ConvRequant rq;
};

/// col_term[n] = bias[n] - x_offset * colsum[n] (mod 2^32), the float32 multipliers of
/// requant.h, and the cheapest requantization form exact for every column. x_offset = x_zp plus the
/// kernel's code offset (0 for both kernels: they see x - x_zp); x_type's range and x_zp bound
/// |x - x_zp|. Arrays are padded to whole 16-column blocks. bias: empty or `columns` values.
void prepare_conv_requant(int64_t columns, const std::vector<int32_t>& colsum,
                          const std::vector<int64_t>& abssum, const std::vector<int32_t>& bias,
                          DType x_type, int32_t x_zp, int32_t x_offset, float x_scale,
                          const std::vector<float>& w_scale, float y_scale, int32_t y_zp,
                          DType y_type, int32_t qmin, int32_t qmax, ConvRequantArrays* out);

/// Reorders the arrays of a's 16-column blocks into the wconv kernels' slot order
/// (ukernels/q8_conv/q8_wconv.h); rq's pointers stay valid.
void to_wconv_slots(int64_t columns, ConvRequantArrays* a);

}  // namespace sliver::ops::q
