// CPU feature detection and kernel selection.
//
// Every fast kernel is compiled for one ISA (its file name says which) and is only safe to call
// when the CPU and the OS support that ISA. dispatch.cc is the only place that asks; it detects
// the features once and picks one kernel per family. Everything else calls the accessors below.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace sliver {

/// Instruction-set features usable by kernels (CPU support and OS register-state support both).
struct CpuFeatures {
  // x86-64
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512dq = false;
  bool avx512vl = false;
  bool avx512vnni = false;
  bool avxvnni = false;
  // aarch64
  bool neon = false;
  bool dotprod = false;
};

/// Features detected on this machine, masked by the SLIVER_ISA environment variable (read once):
/// unset or "native" = everything detected; "avx2" = no AVX-512; "scalar" = no SIMD at all
/// (forces the portable kernels, for tests). Kernel dispatch uses exactly these features.
const CpuFeatures& cpu_features();

/// Features detected on this machine, ignoring SLIVER_ISA (for reports).
const CpuFeatures& detected_cpu_features();

/// Features as "name=0/1" pairs, in declaration order (for reports and bindings).
std::vector<std::pair<std::string, bool>> cpu_feature_list(const CpuFeatures& f);

struct F32GemmKernel;  // gemm.h

/// The FP32 GEMM micro-kernel chosen for this CPU (the best one listed in f32_gemm.inc whose ISA
/// is usable).
const F32GemmKernel& f32_gemm_kernel();

/// The compiled FP32 GEMM micro-kernel with this name, or nullptr. Does not check the ISA: callers
/// (tests) must check f32_gemm_kernel_usable() first.
const F32GemmKernel* find_f32_gemm_kernel(const std::string& name);

/// All compiled FP32 GEMM micro-kernels, in f32_gemm.inc order (best first).
std::vector<const F32GemmKernel*> f32_gemm_kernels();

/// Whether the CPU (after SLIVER_ISA masking) can run kernels of this ISA ("scalar", "avx2", ...).
bool isa_usable(const std::string& isa);

/// Kernel family -> name of the kernel chosen for it, e.g. {"f32_gemm", "f32_gemm_6x16_avx2"}.
std::vector<std::pair<std::string, std::string>> selected_kernels();

}  // namespace sliver
