// q8_epilogue_avx2: the standalone AVX2 epilogue (any mr x nc int32 tile in memory, e.g. from the
// sparse kernels), built from the same per-vector code the q8 GEMM kernels finish tiles with.
#include "q8_epilogue_avx2.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "sliver/qgemm.h"

namespace sliver {
namespace {

template <q8avx2::Kind kKind>
void epilogue(const Q8EpilogueParams& p, const int32_t* acc, int64_t acc_stride, int64_t mr,
              int64_t nc, int64_t n0, const int32_t* row_term, const int32_t* row_sum, void* c,
              int64_t ldc) {
  const q8avx2::EpilogueConsts k(p);
  constexpr size_t kElem = q8avx2::is_requant(kKind) ? 1 : 4;
  for (int64_t i = 0; i < mr; ++i) {
    const __m256i rt = _mm256_set1_epi32(row_term[i]);
    const __m256i rs = _mm256_set1_epi32(p.col_beta ? row_sum[i] : 0);
    uint8_t* row = static_cast<uint8_t*>(c) + i * ldc * kElem;
    for (int64_t j = 0; j < nc; j += 8) {
      const int64_t n = n0 + j;
      __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + i * acc_stride + j));
      v = _mm256_add_epi32(_mm256_add_epi32(v, rt),
                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.col_term + n)));
      if (p.col_beta)
        v = _mm256_add_epi32(
            v, _mm256_mullo_epi32(
                   rs, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.col_beta + n))));
      q8avx2::finish_vec<kKind>(p, k, v, n, std::min<int64_t>(8, nc - j), row + j * kElem);
    }
  }
}

}  // namespace

void q8_epilogue_avx2(const Q8EpilogueParams& p, const int32_t* acc, int64_t acc_stride, int64_t mr,
                      int64_t nc, int64_t n0, const int32_t* row_term, const int32_t* row_sum,
                      void* c, int64_t ldc) {
  q8_epilogue_avx2_for(p)(p, acc, acc_stride, mr, nc, n0, row_term, row_sum, c, ldc);
}

Q8EpilogueFn q8_epilogue_avx2_for(const Q8EpilogueParams& p) {
  switch (p.output) {
    case QGemmOutput::int32:
      return epilogue<q8avx2::kInt32>;
    case QGemmOutput::float32:
      return epilogue<q8avx2::kFloat32>;
    case QGemmOutput::quantized:
      switch (q8avx2::requant_kind(p)) {
        case q8avx2::kRequantF64:
          return epilogue<q8avx2::kRequantF64>;
        case q8avx2::kRequantShortF32:
          return epilogue<q8avx2::kRequantShortF32>;
        default:
          return epilogue<q8avx2::kRequantF32>;
      }
  }
  return epilogue<q8avx2::kInt32>;
}

}  // namespace sliver
