// q8_epilogue_scalar: portable tile epilogue of the 8-bit GEMM (the scalar kernels' and the
// standalone one), the reference for the AVX2 code: zero-point/bias correction, then int32 /
// requantized / float output.
#include <cstdint>

#include "sliver/qgemm.h"
#include "sliver/requant.h"

namespace sliver {

void q8_finish_tile_scalar(const Q8TileArgs& t, const int32_t* acc, int64_t acc_stride) {
  const Q8EpilogueParams* p = t.ep;
  for (int64_t i = 0; i < t.mr; ++i) {
    for (int64_t j = 0; j < t.nc; ++j) {
      const int64_t n = t.n0 + j, at = i * t.ldc + j;
      uint32_t v = static_cast<uint32_t>(acc[i * acc_stride + j]);  // mod 2^32, like the lanes
      if (!p) {
        static_cast<int32_t*>(t.c)[at] = static_cast<int32_t>(v);
        continue;
      }
      v += static_cast<uint32_t>(t.row_term[i]) + static_cast<uint32_t>(p->col_term[n]);
      if (p->col_beta)
        v += static_cast<uint32_t>(p->col_beta[n]) * static_cast<uint32_t>(t.row_sum[i]);
      const int32_t s = static_cast<int32_t>(v);
      switch (p->output) {
        case QGemmOutput::int32:
          static_cast<int32_t*>(t.c)[at] = s;
          break;
        case QGemmOutput::quantized: {
          const int32_t q =
              requantize(s, p->col_scale[n], p->y_zero_point, p->qmin, p->qmax, p->rounding);
          if (p->y_type == DType::u8)
            static_cast<uint8_t*>(t.c)[at] = static_cast<uint8_t>(q);
          else
            static_cast<int8_t*>(t.c)[at] = static_cast<int8_t>(q);
          break;
        }
        case QGemmOutput::float32:
          static_cast<float*>(t.c)[at] =
              dequantize_acc(s, p->col_scale[n], p->float_bias ? p->float_bias + n : nullptr);
          break;
      }
    }
  }
}

void q8_epilogue_scalar(const Q8EpilogueParams& p, const int32_t* acc, int64_t acc_stride,
                        int64_t mr, int64_t nc, int64_t n0, const int32_t* row_term,
                        const int32_t* row_sum, void* c, int64_t ldc) {
  Q8TileArgs t;
  t.mr = mr;
  t.nc = nc;
  t.ep = &p;
  t.n0 = n0;
  t.row_term = row_term;
  t.row_sum = row_sum;
  t.c = c;
  t.ldc = ldc;
  q8_finish_tile_scalar(t, acc, acc_stride);
}

Q8EpilogueFn q8_epilogue_scalar_for(const Q8EpilogueParams&) { return q8_epilogue_scalar; }

}  // namespace sliver
