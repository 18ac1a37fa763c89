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

/// The transformed weights U_xi (mg x cg, xi = 0..15) of a conv, 16 matrices per group, group
/// after group, packed for one of two orientations of the 16 GEMMs:
///  - tiles on the columns (a): M_xi = U_xi V_xi, U_xi as A row tiles (pack_conv_weights);
///  - tiles on the rows (b): M_xi^T = V_xi^T U_xi^T, U_xi^T as B panels (pack_conv_weights_t),
///    for layers with few tiles and many channels (the 7x7 and 14x14 maps of CNNs): their tiles
///    fill neither the NR columns of a panel (16 tiles of a 7x7 map in a 32-column panel, half
///    of it padding) nor, with U streamed from memory row by row, the FMA units; as B panels
///    the weights stream once per block of tiles, in wide prefetched loads.
struct WinogradWeights {
  std::vector<std::shared_ptr<PackedA>> a;
  std::vector<std::shared_ptr<PackedB>> b;
  bool tiles_on_rows() const { return !b.empty(); }
  int64_t bytes() const;
};

/// Whether a layer with `tiles` 2x2 output tiles per image (ceil(oh/2) * ceil(ow/2); 0 when
/// unknown) runs its GEMMs with the tiles on the rows.
bool winograd_tiles_on_rows(int64_t tiles, int64_t mg, int64_t cg);

/// Appends the transformed weights of one group (w: mg x cg x 3 x 3) to *u, in the orientation
/// u already has (tiles_on_rows: the first group decides).
void winograd_pack_weights(const F32GemmKernel& kern, int64_t mg, int64_t cg, const float* w,
                           bool tiles_on_rows, WinogradWeights* u);

/// y = epilogue(conv(x)) for every image and group of g (a 3x3, stride-1, dilation-1 geometry).
/// ep: bias per output channel, residual (if any) laid out like y. Returns false, writing
/// nothing, when x holds a NaN or an infinity: the transforms mix the 16 inputs of a patch, so
/// an infinity would come out as NaN (inf - inf) where the direct sum gives an infinity; the
/// caller then runs the direct path.
bool winograd_conv(const ConvGeom& g, const WinogradWeights& u, const float* x, const Epilogue& ep,
                   float* y, ThreadPool* pool);

}  // namespace sliver::ops
