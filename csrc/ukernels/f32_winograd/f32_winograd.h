// FP32 Winograd F(2x2, 3x3) transforms, for 3x3 stride-1 convolutions.
//
// Winograd's minimal filtering computes a 2x2 block of outputs of a 3x3 window from a 4x4 patch
// of input with 16 multiplications instead of 36: the patch d goes to V = B^T d B, the weights g
// (once, at load) to U = G g G^T, and the outputs are Y = A^T (U .* V) A. Summed over input
// channels, the 16 element-wise products become 16 independent GEMMs, M_xi = U_xi * V_xi
// (output channels x input channels times input channels x tiles): 2.25 times fewer
// multiply-adds than the direct convolution, run by the ordinary GEMM micro-kernel. The
// transforms are only additions (and halvings, in G), so the rounding stays close to the direct
// sum's. With xi = 4 i + j:
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
//   A^T = [1 1 1 0; 0 1 -1 -1]
// These kernels do the per-run transforms, for a run of n tiles along one row of tiles (tile t
// covers outputs (0..1, 2t..2t+1) and reads inputs (0..3, 2t..2t+3) from its origin).
//
// Order of tiles in V and M: the run's tiles go in groups of 8; in a full group, tile 8g + i
// sits at position 8g + kWinoGroupOrder[i] (the order in which AVX2 in-lane shuffles leave
// them), in the last, partial group at 8g + i. Only the two transforms see this order (the
// GEMMs treat tiles as independent columns), and every kernel uses it, so V from one kernel
// family and M for another agree.
#pragma once

#include <cstdint>
#include <string>

namespace sliver {

/// Position of tile i within a full group of 8 (an involution).
constexpr int kWinoGroupOrder[8] = {0, 1, 4, 5, 2, 3, 6, 7};

/// Position in V/M of tile t of a run of n tiles.
inline int64_t wino_tile_position(int64_t t, int64_t n) {
  const int64_t g = t / 8 * 8;
  return g + 8 <= n ? g + kWinoGroupOrder[t % 8] : t;
}

// The input is read in place: inputs outside the plane (the conv's padding, or the grid of
// tiles sticking out of an odd-sized output) read as 0, so no padded copy is made.
struct F32WinoInputParams {
  const float* x;  // channel 0's input plane, in_h x in_w, rows ld floats apart
  int64_t ld, in_h, in_w;
  int64_t plane;  // floats between input channels
  int64_t channels;
  int64_t row0, col0;  // plane position of the first tile's patch origin (may be negative)
  int64_t n;           // tiles: tile t's patch covers rows row0 .. +3, columns col0 + 2t .. +3
  float* v;            // V_xi(c, t) goes to v[xi * v_xi_stride + c * v_c_stride + position(t)]
  int64_t v_c_stride, v_xi_stride;
};

// Y = A^T M A for n tiles of one output channel, then bias, a clamp, the residual, a clamp:
//   y = post_clamp(act_clamp(Y + bias) + residual), clamp(v) = min(max(v, lo), hi) if enabled.
// Only rows x cols outputs are written (rows 1 or 2, cols 2n or 2n - 1: the grid's last row or
// column of tiles may stick out of an odd-sized output).
struct F32WinoOutputParams {
  const float* m;  // M_xi(t) at m[xi * m_xi_stride + position(t)]
  int64_t m_xi_stride;
  int64_t n;
  float* y;  // output (r, col) at y[r * ldy + col]
  int64_t ldy, rows, cols;
  float bias;
  const float* residual;  // nullptr or laid out as y
  bool act_clamp, post_clamp;
  float act_lo, act_hi, post_lo, post_hi;
};

using F32WinoInputFn = void (*)(const F32WinoInputParams& p);
using F32WinoOutputFn = void (*)(const F32WinoOutputParams& p);

struct F32WinogradKernel {
  const char* name;  // f32_wino2x2_3x3_<isa>: the functions <name>_input and <name>_output
  const char* isa;
  F32WinoInputFn input;
  F32WinoOutputFn output;
};

#define SLIVER_F32_WINOGRAD_KERNEL(name, isa)            \
  void name##_input(const F32WinoInputParams& p);   \
  void name##_output(const F32WinoOutputParams& p);
#include "f32_winograd.inc"
#undef SLIVER_F32_WINOGRAD_KERNEL

/// The best usable transform kernels.
const F32WinogradKernel& f32_winograd_kernel();
/// The compiled kernels with this name, or nullptr (tests; check isa_usable first).
const F32WinogradKernel* find_f32_winograd_kernel(const std::string& name);

/// U = G g G^T for one 3x3 window g (row-major): u[xi] for xi = 4 i + j.
inline void f32_winograd_weights(const float* g, float* u) {
  float t[4][3];  // G g
  for (int j = 0; j < 3; ++j) {
    t[0][j] = g[j];
    t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
    t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
    t[3][j] = g[6 + j];
  }
  for (int i = 0; i < 4; ++i) {  // (G g) G^T
    u[4 * i + 0] = t[i][0];
    u[4 * i + 1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
    u[4 * i + 2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
    u[4 * i + 3] = t[i][2];
  }
}

/// Y = A^T M A for one tile: m[xi] for xi = 4 i + j gives the 2x2 outputs y[r][c] (the sums the
/// scalar kernel and the transposed layout of conv_winograd.cc share; the vector kernels do the
/// same sums in the same order).
inline void f32_winograd_output_tile(const float* m, float (&y)[2][2]) {
  float s[4][2];  // M A, row by row
  for (int i = 0; i < 4; ++i) {
    s[i][0] = m[4 * i] + m[4 * i + 1] + m[4 * i + 2];
    s[i][1] = m[4 * i + 1] - m[4 * i + 2] - m[4 * i + 3];
  }
  for (int j = 0; j < 2; ++j) {  // A^T (M A)
    y[0][j] = s[0][j] + s[1][j] + s[2][j];
    y[1][j] = s[1][j] - s[2][j] - s[3][j];
  }
}

}  // namespace sliver
