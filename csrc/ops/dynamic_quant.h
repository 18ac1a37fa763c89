// Dynamic quantization of a float32 tensor to uint8 with per-tensor parameters, on the f32_qu8
// micro-kernels (ukernels/f32_qu8: vector min/max and divide-round-saturate), threaded.
//
// Two passes are unavoidable: the scale depends on the whole tensor's range. Both split the
// tensor into chunks; min and max do not depend on the order they see values in, and the
// quantize step is elementwise, so results do not depend on the thread count.
//
// Two parameter rules exist and differ only for an all-zero input (whose codes are 0 either way):
//   onnx (DynamicQuantizeLinear): scale = range / 255 with range 1 when max == min;
//   onnxruntime (DynamicQuantizeMatMul, MatMulIntegerToFloat's producers): scale = 1 then.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "ops/common.h"
#include "ops/quant_util.h"
#include "ukernels/f32_qu8/f32_qu8.h"

namespace sliver::ops::q {

struct DynamicParams {
  float scale = 1.f;
  int32_t zero_point = 0;
};

enum class DynamicRule { onnx, onnxruntime };

/// lo = min(0, x...), hi = max(0, x...) (NaN ignored) and whether any x is NaN.
inline void minmax_f32(ThreadPool* pool, const float* x, int64_t n, float* lo, float* hi,
                       bool* nan) {
  constexpr int64_t kChunk = 1 << 14;
  const F32QU8Kernels& k = f32_qu8_kernels();
  const int64_t chunks = std::max<int64_t>(1, (n + kChunk - 1) / kChunk);
  if (chunks == 1 || !pool || pool->num_threads() <= 1) {
    k.minmax(x, n, lo, hi, nan);
    return;
  }
  std::vector<float> los(chunks), his(chunks);
  std::vector<char> nans(chunks);
  parallel_for(pool, chunks, static_cast<double>(kChunk), [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      bool bad = false;
      const int64_t start = c * kChunk;
      k.minmax(x + start, std::min(kChunk, n - start), &los[c], &his[c], &bad);
      nans[c] = bad;
    }
  });
  float l = 0.f, h = 0.f;
  bool bad = false;
  for (int64_t c = 0; c < chunks; ++c) {  // chunk results are finite or 0: any order is exact
    l = los[c] < l ? los[c] : l;
    h = his[c] > h ? his[c] : h;
    bad |= nans[c] != 0;
  }
  *lo = l;
  *hi = h;
  *nan = bad;
}

/// The uint8 parameters of x: zp = round_half_even(clamp(0 - lo / scale, 0, 255)).
inline DynamicParams dynamic_params(ThreadPool* pool, const float* x, int64_t n, DynamicRule rule) {
  float lo = 0.f, hi = 0.f;
  bool nan = false;
  minmax_f32(pool, x, n, &lo, &hi, &nan);
  DynamicParams p;
  if (rule == DynamicRule::onnx) {
    if (nan) lo = hi = std::numeric_limits<float>::quiet_NaN();
    p.scale = (hi == lo ? 1.f : hi - lo) / 255.f;
  } else {
    p.scale = hi == lo ? 1.f : (hi - lo) / 255.f;
  }
  const float z = 0.f - lo / p.scale;
  p.zero_point = static_cast<int32_t>(round_even_small(std::max(0.f, std::min(255.f, z))));
  return p;
}

/// y = saturate(round_half_even(x / scale) + zp) (QuantizeLinear's float32 steps), threaded.
inline void quantize_u8(ThreadPool* pool, const float* x, int64_t n, const DynamicParams& p,
                        uint8_t* y) {
  constexpr int64_t kChunk = 1 << 13;
  const F32QU8Kernels& k = f32_qu8_kernels();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  parallel_for(pool, chunks, 4.0 * kChunk, [&](int64_t b, int64_t e) {
    const int64_t start = b * kChunk, end = std::min(n, e * kChunk);
    k.quantize(x + start, end - start, p.scale, p.zero_point, y + start);
  });
}

}  // namespace sliver::ops::q
