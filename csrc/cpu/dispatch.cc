// CPU feature detection and per-family kernel selection, done once per process.
//
// This is the only file that asks what the CPU can do. A feature counts only if the OS also saves
// the registers it needs (XCR0 via xgetbv on x86), otherwise the first AVX instruction would fault.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include "sliver/cpu.h"
#include "sliver/gemm.h"
#include "sliver/qgemm.h"
#include "ukernels/f32_pool/f32_pool.h"
#include "ukernels/q8_vbinary/q8_vaddmul.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace sliver {
namespace {

#if defined(__x86_64__) || defined(__i386__)
uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27), avx = c & (1u << 28);
  const bool fma = c & (1u << 12), f16c = c & (1u << 29);
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool ymm_state = (xcr0 & 0x6) == 0x6;                 // SSE + AVX state
  const bool zmm_state = ymm_state && (xcr0 & 0xe0) == 0xe0;  // opmask + ZMM state
  if (!avx || !ymm_state) return f;
  f.fma = fma;
  f.f16c = f16c;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = b & (1u << 5);
    f.avx512f = zmm_state && (b & (1u << 16));
    f.avx512bw = f.avx512f && (b & (1u << 30));
    f.avx512dq = f.avx512f && (b & (1u << 17));
    f.avx512vl = f.avx512f && (b & (1u << 31));
    f.avx512vnni = f.avx512f && (c & (1u << 11));
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avxvnni = f.avx2 && (a & (1u << 4));
  return f;
}
#elif defined(__aarch64__)
CpuFeatures detect() {
  CpuFeatures f;
  f.neon = true;  // mandatory in AArch64
#if defined(__linux__)
  const unsigned long hw = getauxval(AT_HWCAP);
#if defined(HWCAP_ASIMDDP)
  f.dotprod = hw & HWCAP_ASIMDDP;
#endif
#elif defined(__APPLE__)
  f.dotprod = true;  // every Apple arm64 core has it
#endif
  return f;
}
#else
CpuFeatures detect() { return {}; }
#endif

// SLIVER_ISA: unset / "native" = all; "avx2" = AVX2 + FMA only (no AVX-512, no VNNI: what a Zen 3
// or older Intel core runs); "scalar" = nothing.
CpuFeatures apply_isa_env(CpuFeatures f) {
  const char* env = std::getenv("SLIVER_ISA");
  if (!env || !*env || !std::strcmp(env, "native")) return f;
  if (!std::strcmp(env, "scalar")) return CpuFeatures{};
  if (!std::strcmp(env, "avx2")) {
    f.avx512f = f.avx512bw = f.avx512dq = f.avx512vl = f.avx512vnni = f.avxvnni = false;
    return f;
  }
  std::fprintf(stderr, "sliver: ignoring unknown SLIVER_ISA=%s (use scalar, avx2 or native)\n",
               env);
  return f;
}

const F32GemmKernel kF32GemmKernels[] = {
#define SLIVER_F32_GEMM_KERNEL(name, mr, nr, isa) {#name, mr, nr, #isa, name},
#include "../ukernels/f32_gemm/f32_gemm.inc"
#undef SLIVER_F32_GEMM_KERNEL
};

template <class T, size_t N>
const T& first_usable(const T (&table)[N]) {
  for (const T& k : table)
    if (isa_usable(k.isa)) return k;
  return table[N - 1];  // every family ends with its scalar kernel
}

}  // namespace

const CpuFeatures& detected_cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = apply_isa_env(detected_cpu_features());
  return f;
}

std::vector<std::pair<std::string, bool>> cpu_feature_list(const CpuFeatures& f) {
  return {{"avx2", f.avx2},       {"fma", f.fma},           {"f16c", f.f16c},
          {"avx512f", f.avx512f}, {"avx512bw", f.avx512bw}, {"avx512vnni", f.avx512vnni},
          {"avxvnni", f.avxvnni}, {"neon", f.neon},         {"dotprod", f.dotprod}};
}

bool isa_usable(const std::string& isa) {
  const CpuFeatures& f = cpu_features();
  if (isa == "scalar") return true;
  if (isa == "avx2") return f.avx2 && f.fma;
  if (isa == "avx2_f16c") return f.avx2 && f.fma && f.f16c;
  // the *_avx512* files are built with F, BW, DQ and VL (CMakeLists.txt)
  const bool avx512 = f.avx2 && f.fma && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl;
  if (isa == "avx512") return avx512;
  if (isa == "avx512vnni") return avx512 && f.avx512vnni;
  if (isa == "avxvnni") return f.avx2 && f.fma && f.avxvnni;
  if (isa == "neon") return f.neon;
  if (isa == "neondot") return f.neon && f.dotprod;
  return false;
}

const F32GemmKernel& f32_gemm_kernel() {
  static const F32GemmKernel& k = first_usable(kF32GemmKernels);
  return k;
}

const F32GemmKernel* find_f32_gemm_kernel(const std::string& name) {
  for (const F32GemmKernel& k : kF32GemmKernels)
    if (name == k.name) return &k;
  return nullptr;
}

std::vector<const F32GemmKernel*> f32_gemm_kernels() {
  std::vector<const F32GemmKernel*> v;
  for (const F32GemmKernel& k : kF32GemmKernels) v.push_back(&k);
  return v;
}

std::vector<std::pair<std::string, std::string>> selected_kernels() {
  // One line per kernel family: {family, its chosen kernel's name}.
  static const std::pair<const char*, std::function<const char*()>> kFamilies[] = {
      {"f32_gemm", [] { return f32_gemm_kernel().name; }},
      {"f32_pool", [] { return f32_pool_row().isa; }},
      {"q8_gemm", [] { return qgemm_native_kernel(); }},
      {"q8_vaddmul", [] { return q8_qlinear_kernel(Q8QLinearOp::add, false).isa; }},
  };
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [family, name] : kFamilies) out.emplace_back(family, name());
  return out;
}

}  // namespace sliver
