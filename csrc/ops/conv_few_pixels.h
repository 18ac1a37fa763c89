// FP32 convs with few output pixels (7x7 maps, 1x1 squeeze-excite convs): the GEMM with the roles
// swapped, pixels on its rows.
//
// The im2col GEMM puts the pixels on the micro-kernel's NR = 16 columns, so 49 pixels take four
// panels, the last with one pixel, which costs half a full one: an eighth of the work is padding
// (and a single pixel runs at 1/8 of the FMA width). With the pixels as A's row tiles instead
// (RowTiles: heights 5 and 6 for 49), the output channels fill whole NR panels and nothing is
// wasted; the price is writing C^T (pixels x channels) and transposing it into Y, which for few
// pixels is small next to the M x K x pixels multiply-adds.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "ops/conv_im2col.h"
#include "sliver/gemm.h"

namespace sliver {
class ThreadPool;
}

namespace sliver::ops {

/// Whether a conv with `pixels` output pixels per image and an M x K weight matrix per group
/// runs faster with the pixels on the GEMM's rows.
bool few_pixels_suit(int64_t pixels, int64_t m, int64_t k, const F32GemmKernel& kern);

/// Y = conv(X) for geometry g (inputs from `in`, window kh x kw), with the weights of group gi
/// packed by pack_conv_weights_t at w[gi] (K blocks of cpb input channels), and ep's bias,
/// activations and residual (laid out like Y).
void conv_few_pixels(const ConvGeom& g, const Im2colSource& in, int64_t kh, int64_t kw,
                     const std::vector<std::shared_ptr<PackedB>>& w, int64_t cpb,
                     const Epilogue& ep, float* y, ThreadPool* pool);

}  // namespace sliver::ops
