// FP32 3x3 stride-1 convolution by Winograd F(2x2, 3x3): the transforms are the f32_winograd
// kernels (see f32_winograd.h for the idea), the 16 products per tile are 16 GEMMs on
// conv_igemm's engine. For the C_in, C_out >= 8 layers of CNNs it does 2.25 times fewer
// multiply-adds than im2col; the transforms cost a few additions per input and output value.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "ops/conv_igemm.h"

namespace sliver {
class ThreadPool;
}

namespace sliver::ops {

/// Whether a conv with these weights (kh x kw, cg inputs and mg outputs per group) and
/// attributes runs as Winograd F(2x2, 3x3): 3x3, strides and dilations 1, and enough channels
/// for the GEMMs to outweigh the transforms.
bool winograd_suits(int64_t kh, int64_t kw, const std::vector<int64_t>& strides,
                    const std::vector<int64_t>& dilations, int64_t cg, int64_t mg);

/// The transformed weights of one group (w: mg x cg x 3 x 3): U_xi (mg x cg) for xi = 0..15,
/// each packed with pack_conv_weights.
std::vector<std::shared_ptr<PackedA>> winograd_pack_weights(const F32GemmKernel& kern, int64_t mg,
                                                            int64_t cg, const float* w);

/// y = epilogue(conv(x)) for every image and group of g (a 3x3, stride-1, dilation-1 geometry);
/// u holds 16 packed matrices per group, group after group. ep: bias per output channel,
/// residual (if any) laid out like y. Returns false, writing nothing, when x holds a NaN or an
/// infinity: the transforms mix the 16 inputs of a patch, so an infinity would come out as NaN
/// (inf - inf) where the direct sum gives an infinity; the caller then runs the direct path.
bool winograd_conv(const ConvGeom& g, const std::vector<std::shared_ptr<PackedA>>& u,
                   const float* x, const Epilogue& ep, float* y, ThreadPool* pool);

}  // namespace sliver::ops
