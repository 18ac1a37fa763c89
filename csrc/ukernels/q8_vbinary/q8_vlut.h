// Code-table gathers: y = table[byte(x)] (256 entries: sliver:QLinearLookup, QLinearLeakyRelu,
// QLinearSigmoid) and y = table[byte(a) * 256 + byte(b)] (65536 entries:
// sliver:QLinearPairLookup).
//
// Tables stay where the function of the codes is no short float formula: qdq_fold_lookups
// composes requantizations (a bias add followed by a GELU's lookups, say) into one table, and
// evaluating the composition per element would cost more than the gather. The gathers are what
// can be made faster. A 256-entry table fits in 16 SSE registers' worth of bytes, so AVX2 looks
// up 32 codes with 16 byte shuffles (one per 16-entry slice) instead of 32 loads. A 64 KiB table
// does not: AVX2 gathers 8 lanes per vpgatherdd.
//
// Contract: n >= 1 outputs; x, and a (b) when its stride is 1, advance one code per output; a
// stride of 0 repeats a[0] (b[0]). Exactly the n codes of an advancing operand are read and n
// bytes written. A pair table holds 65536 codes followed by kQ8VLut2TablePad readable bytes:
// the AVX2 kernel loads a 32-bit word at each index and keeps its low byte.
#pragma once

#include <cstdint>
#include <string>

namespace sliver {

constexpr int64_t kQ8VLut2TablePad = 3;

using Q8VLut1Fn = void (*)(const uint8_t* table, int64_t n, const uint8_t* x, uint8_t* y);
using Q8VLut2Fn = void (*)(const uint8_t* table, int64_t n, const uint8_t* a, int64_t a_stride,
                           const uint8_t* b, int64_t b_stride, uint8_t* y);

/// Both lookup kernels of one ISA.
struct Q8VLutKernels {
  const char* isa;
  Q8VLut1Fn lut1;
  Q8VLut2Fn lut2;
};

#define SLIVER_Q8_VLUT_ISA(isa)                                                              \
  void q8_vlut1_##isa(const uint8_t* table, int64_t n, const uint8_t* x, uint8_t* y);       \
  void q8_vlut2_##isa(const uint8_t* table, int64_t n, const uint8_t* a, int64_t a_stride,  \
                      const uint8_t* b, int64_t b_stride, uint8_t* y);
#include "q8_vlut.inc"
#undef SLIVER_Q8_VLUT_ISA

/// The best usable kernels on this CPU.
const Q8VLutKernels& q8_vlut_kernels();
/// The compiled kernels of this ISA, or nullptr (tests; check isa_usable first).
const Q8VLutKernels* find_q8_vlut_kernels(const std::string& isa);

}  // namespace sliver
