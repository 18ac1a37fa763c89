// f32_dwconv_c8_3x3s{1,2}_avx2: channel-blocked depthwise kernels (contract in f32_dwconv.h).
//
// Three passes over the block, all whole 8-lane vectors: (1) 8x8 transposes move 8 pixels of
// the 8 input planes to [pixel][lane], whose rows are copied into the zero-padded block
// T[row][column][lane]; (2) every output pixel sums its 9 taps from T (4 pixels side by side:
// 4 FMA chains, the weights in 9 registers); (3) 8x8 transposes move 8 output pixels of [pixel][lane] back to the 8 planes. Planes are
// contiguous, so only their last 1-7 pixels take a masked load or store.
#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstring>

#include "f32_dwconv.h"
#include "ukernels/f32_transpose8_avx2.h"

namespace sliver {
namespace {

// Lanes [0, n) of a mask (n in 1..8).
inline __m256i first_lanes(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// n (1..8) values of each of the nc planes at src + c * stride -> 8 vectors [value][lane] at
// dst (lanes >= nc are 0; vectors >= n hold zeros). Fixed trip counts keep r in registers (a
// loop over n made GCC spill it and copy it with rep movsq: 2x slower).
inline void planes_to_lanes(const float* src, int64_t stride, int nc, int64_t n, float* dst) {
  __m256 r[8];
  const __m256i m = first_lanes(n);
#pragma GCC unroll 8
  for (int c = 0; c < 8; ++c)
    r[c] = c >= nc  ? _mm256_setzero_ps()
           : n == 8 ? _mm256_loadu_ps(src + c * stride)
                    : _mm256_maskload_ps(src + c * stride, m);
  avx2::transpose8(r);
#pragma GCC unroll 8
  for (int j = 0; j < 8; ++j) _mm256_store_ps(dst + 8 * j, r[j]);
}

// The inverse: 8 vectors [value][lane] at src -> the first n values of the nc planes at
// dst + c * stride.
inline void lanes_to_planes(const float* src, int64_t n, int nc, float* dst, int64_t stride) {
  __m256 r[8];
#pragma GCC unroll 8
  for (int j = 0; j < 8; ++j) r[j] = _mm256_load_ps(src + 8 * j);
  avx2::transpose8(r);
  const __m256i m = first_lanes(n);
#pragma GCC unroll 8
  for (int c = 0; c < 8; ++c) {
    if (c >= nc) break;
    if (n == 8) _mm256_storeu_ps(dst + c * stride, r[c]);
    else _mm256_maskstore_ps(dst + c * stride, m, r[c]);
  }
}

template <int S>
void dwconv_c8(const F32DwconvC8Params& p) {
  constexpr int K = 3;
  assert(p.nc >= 1 && p.nc <= 8 && p.pad_top >= 0 && p.pad_top < K && p.pad_left >= 0 &&
         p.pad_left < K);
  assert((reinterpret_cast<uintptr_t>(p.scratch) & 31) == 0);
  const int64_t ph = (p.out_h - 1) * S + K, pw = (p.out_w - 1) * S + K;
  float* T = p.scratch;
  float* O = T + 8 * ph * pw;

  // (1) The input planes as [pixel][lane] (contiguous planes: whole 8x8 transposes but the
  // last), then their rows into T, whose other cells are the zero padding.
  float* F = O + 8 * p.out_h * p.out_w;
  const int64_t in_pixels = p.in_h * p.in_w;
  for (int64_t q = 0; q < in_pixels; q += 8)
    planes_to_lanes(p.x + q, p.x_stride, p.nc, std::min<int64_t>(8, in_pixels - q), F + 8 * q);
  const int64_t rows = std::min(p.in_h, ph - p.pad_top), cols = std::min(p.in_w, pw - p.pad_left);
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t r = 0; r < ph; ++r) {
    float* t = T + 8 * r * pw;
    const int64_t ih = r - p.pad_top;
    if (ih < 0 || ih >= rows) {
      for (int64_t j = 0; j < pw; ++j) _mm256_store_ps(t + 8 * j, zero);
      continue;
    }
    const float* f = F + 8 * ih * p.in_w;
    int64_t j = 0;
    for (; j < p.pad_left; ++j) _mm256_store_ps(t + 8 * j, zero);
    for (int64_t iw = 0; iw < cols; ++iw, ++j) _mm256_store_ps(t + 8 * j, _mm256_load_ps(f + 8 * iw));
    for (; j < pw; ++j) _mm256_store_ps(t + 8 * j, zero);
  }

  // (2) O[pixel] = clamp(bias + sum of the window's taps).
  alignas(32) float bias[8] = {};
  for (int c = 0; c < p.nc && p.bias; ++c) bias[c] = p.bias[c];
  __m256 w[K * K];
  for (int t = 0; t < K * K; ++t) w[t] = _mm256_loadu_ps(p.w + 8 * t);
  const __m256 vb = _mm256_load_ps(bias), lo = _mm256_set1_ps(p.lo), hi = _mm256_set1_ps(p.hi);
  auto finish = [&](__m256 a) {
    return p.clamp ? _mm256_min_ps(_mm256_max_ps(a, lo), hi) : a;  // NaN -> lo
  };
  for (int64_t oh = 0; oh < p.out_h; ++oh) {
    const float* t0 = T + 8 * (oh * S * pw);
    float* o = O + 8 * (oh * p.out_w);
    int64_t ow = 0;
    for (; ow + 4 <= p.out_w; ow += 4) {
      __m256 a[4] = {vb, vb, vb, vb};
      for (int i = 0; i < K; ++i)
        for (int j = 0; j < K; ++j)
          for (int q = 0; q < 4; ++q)
            a[q] = _mm256_fmadd_ps(_mm256_load_ps(t0 + 8 * (i * pw + (ow + q) * S + j)),
                                   w[i * K + j], a[q]);
      for (int q = 0; q < 4; ++q) _mm256_store_ps(o + 8 * (ow + q), finish(a[q]));
    }
    for (; ow < p.out_w; ++ow) {
      __m256 a = vb;
      for (int i = 0; i < K; ++i)
        for (int j = 0; j < K; ++j)
          a = _mm256_fmadd_ps(_mm256_load_ps(t0 + 8 * (i * pw + ow * S + j)), w[i * K + j], a);
      _mm256_store_ps(o + 8 * ow, finish(a));
    }
  }

  // (3) The output planes, 8 pixels at a time (the planes are contiguous).
  const int64_t pixels = p.out_h * p.out_w;
  for (int64_t q = 0; q < pixels; q += 8)
    lanes_to_planes(O + 8 * q, std::min<int64_t>(8, pixels - q), p.nc, p.y + q, p.y_stride);
}

}  // namespace

void f32_dwconv_c8_3x3s1_avx2(const F32DwconvC8Params& p) { dwconv_c8<1>(p); }
void f32_dwconv_c8_3x3s2_avx2(const F32DwconvC8Params& p) { dwconv_c8<2>(p); }

}  // namespace sliver
