// Shared by the sparse-weight operator kernels (sparse_ops.cc: FP32, sparse_q8_ops.cc: INT8):
// the "sliver.sparse" session setting, the dense-or-sparse choice per layer, the dense fallback
// for activation extents too small for sparse, and the describe()/weight_bytes() helpers.
//
// When sparse runs. The factories are registered above the dense ones and decline (nullptr)
// unless the session's "sliver.sparse" config says "sparse" (force, for experiments) or, in
// "auto" (the default), the cost model (sparse_cost_*: measured density crossovers per packed
// layout and activation-extent class, scaled by the measured speed of the dense path the layer
// would take: the GEMM, Winograd, im2col, the channels-last INT8 conv) says the packed weights
// win at the layer's extent.
// Weights far too dense for any crossover are rejected after one counting pass, before the
// (costlier) structure analysis and packing. An extent unknown at creation (a dynamic batch or
// image width) is decided per run: the kernel takes the layer when sparse wins for wide
// extents, and hands runs whose extent is too small for sparse to a dense kernel for the same
// node, created on first need.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/common.h"
#include "sliver/kernel.h"
#include "sliver/sparse.h"

namespace sliver::ops::sparse {

inline constexpr int kSparsePriority = 10;  // above the dense kernels' default 0
constexpr double kNeverCost = 99;  // a relative cost for layers auto mode never runs sparse
// The cost model's extent classes (sparse_driver.cc): 1, 2-4, 5-7, 8-15, 16-31, >= 32.
constexpr int64_t kExtentClasses[] = {1, 2, 5, 8, 16, 32};
// Floats (or bytes for INT8) of one gathered block of conv windows: stays in L2 while the
// sparse kernel packs its panels from it.
constexpr int64_t kGatherBlockElems = 48 * 1024;

// ---- the choice ----

enum class Mode { automatic, dense, sparse };

inline Mode read_mode(const KernelInit& init) {
  const std::string v = init.config_value("sliver.sparse", "auto");
  if (v == "auto") return Mode::automatic;
  if (v == "dense") return Mode::dense;
  if (v == "sparse") return Mode::sparse;
  fail("session config sliver.sparse must be auto, dense or sparse, got '", v, "'");
}

// The highest density at which any packed layout can win against the dense path: weights denser
// than this are not worth analysing.
inline double max_density(bool int8, DensePath dense) {
  double m = 0;
  for (int r : {1, 4, 8})
    for (int kr : {1, 2, 4}) m = std::max(m, sparse_crossover_density(int8, r, kr, 1 << 20));
  return std::min(m / dense_path_factor(int8, dense), kSparseMaxDensity);
}

inline double nonzero_fraction_f32(const float* w, int64_t n) {
  int64_t nz = 0;
  for (int64_t i = 0; i < n; ++i) nz += w[i] != 0.f;
  return n ? static_cast<double>(nz) / static_cast<double>(n) : 1.0;
}

// Element i belongs to output channel (i / channel_stride) % channels.
inline double nonzero_fraction_q8(const Tensor& w, const std::vector<int32_t>& zp,
                                  int64_t channel_stride, int64_t channels) {
  const int64_t n = w.numel();
  const uint8_t* p = static_cast<const uint8_t*>(w.data);
  const bool is_signed = w.dtype == DType::i8;
  int64_t nz = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t v = is_signed ? int32_t{static_cast<int8_t>(p[i])} : int32_t{p[i]};
    nz += v != zp[zp.size() == 1 ? 0 : (i / channel_stride) % channels];
  }
  return n ? static_cast<double>(nz) / static_cast<double>(n) : 1.0;
}

/// Whether every attribute of the node is one the sparse kernels read: an attribute added to an op
/// later (a new layout flag, say) sends the node to the dense kernel instead of being ignored.
inline bool only_attrs(const Attrs& a, std::initializer_list<const char*> known) {
  for (const auto& kv : a.values)
    if (std::none_of(known.begin(), known.end(), [&](const char* k) { return kv.first == k; }))
      return false;
  return true;
}
#define SLIVER_CONV_ATTRS "auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"
#define SLIVER_FUSED_ATTRS \
  "activation", "activation_params", "post_activation", "post_activation_params"

/// Product of a static shape's dims [b, e) (e < 0: counted from the end), or -1 if unknown.
inline int64_t static_extent(const KernelInit& init, int input, int64_t b, int64_t e) {
  if (input >= static_cast<int>(init.input_shapes.size()) || !init.input_shapes[input].known)
    return -1;
  const Shape& d = init.input_shapes[input].dims;
  const int64_t end = e < 0 ? static_cast<int64_t>(d.size()) + e + 1 : e;
  if (b < 0 || end > static_cast<int64_t>(d.size()) || b > end) return -1;
  int64_t n = 1;
  for (int64_t i = b; i < end; ++i) {
    if (d[i] < 0) return -1;
    n *= d[i];
  }
  return n;
}

/// Rows of a weights-on-the-right product known statically: all of A's dims but the last.
inline int64_t static_rows(const KernelInit& init) { return static_extent(init, 0, 0, -2); }

inline double cost(const SparseF32Weights& w, int64_t cols, DensePath dense) {
  return sparse_cost_f32(w, cols, dense);
}
inline double cost(const SparseQ8Weights& w, int64_t cols, DensePath dense) {
  return sparse_cost_q8(w, cols, dense);
}

/// The relative cost (sparse.h) of a layer's packed weights at `cols`: its worst group's.
template <class W>
double layer_cost(const std::vector<std::shared_ptr<W>>& ws, int64_t cols, DensePath dense) {
  double c = 0;
  for (const auto& w : ws) c = std::max(c, cost(*w, cols, dense));
  return c;
}

/// Bit i set: every packed weight of the layer runs faster sparse at extents of class i.
using ExtentClasses = uint32_t;
constexpr int kNumExtentClasses = static_cast<int>(std::size(kExtentClasses));
constexpr ExtentClasses kAllExtents = (1u << kNumExtentClasses) - 1;

inline int extent_class(int64_t extent) {
  int c = 0;
  while (c + 1 < kNumExtentClasses && extent >= kExtentClasses[c + 1]) ++c;
  return c;
}

template <class W>
ExtentClasses sparse_extents(const std::vector<std::shared_ptr<W>>& ws, DensePath dense) {
  ExtentClasses m = 0;
  for (int i = 0; i < kNumExtentClasses; ++i)
    if (layer_cost(ws, kExtentClasses[i], dense) <= 1.0) m |= 1u << i;
  return m;
}

// What the cost model said about a layer, for describe(): its dense path and, when the extent
// was known at creation, the relative cost there.
struct CostNote {
  DensePath dense = DensePath::gemm;
  double cost = -1;  // < 0: extent unknown
};

template <class W>
CostNote cost_note(const std::vector<std::shared_ptr<W>>& ws, int64_t extent, DensePath dense) {
  return {dense, extent > 0 ? layer_cost(ws, extent, dense) : -1.0};
}

/// Whether to build the sparse kernel; `extent` is the static activation extent (-1 unknown).
inline bool worth_building(Mode mode, ExtentClasses sparse, int64_t extent) {
  if (mode == Mode::sparse) return true;
  if (mode == Mode::dense || sparse == 0) return false;
  return extent < 0 || ((sparse >> extent_class(extent)) & 1u);
}

/// The extent classes whose runs stay sparse: all when the extent was known (and chosen) at
/// creation.
inline ExtentClasses run_time_extents(ExtentClasses sparse, int64_t extent) {
  return extent >= 0 ? kAllExtents : sparse;
}

// The dense kernel of the same node, created on the first run that needs it (a run whose
// activation extent is too small for the sparse weights to pay).
class DenseFallback {
 public:
  explicit DenseFallback(const KernelInit& init) : init_(init) {
    init_.config["sliver.sparse"] = "dense";
  }
  Kernel& get() {
    std::call_once(once_, [&] {
      kernel_ = create_kernel(init_);
      if (!kernel_) fail("no dense kernel for small extents");
      ready_.store(true);
    });
    return *kernel_;
  }
  int64_t weight_bytes() const { return ready_.load() ? kernel_->weight_bytes() : 0; }

 private:
  KernelInit init_;
  std::once_flag once_;
  std::unique_ptr<Kernel> kernel_;
  std::atomic<bool> ready_{false};
};

// Shared by every sparse kernel: the extent rule, the fallback and the cost note.
class SparseBase : public Kernel {
 public:
  SparseBase(const KernelInit& init, Mode mode, ExtentClasses sparse, CostNote note = {})
      : forced_(mode == Mode::sparse), sparse_(sparse), note_(note),
        fallback_(std::make_unique<DenseFallback>(init)) {}

 protected:
  bool use_sparse(int64_t extent) const {
    return forced_ || extent == 0 || ((sparse_ >> extent_class(extent)) & 1u);
  }
  void run_dense(RunContext& ctx, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
    fallback_->get().run(ctx, in, out);
  }
  // " cost 0.42 vs conv_winograd x1.50" (the relative cost at the static extent, sparse is
  // predicted faster below 1, against the dense path and its factor), then " (dense below 32
  // rows)" when runs may go to the dense kernel.
  std::string extent_note(const char* unit, bool int8) const {
    std::string s;
    if (note_.cost >= 0) {
      char buf[96];
      std::snprintf(buf, sizeof(buf), " cost %.2f vs %s x%.2f", std::min(note_.cost, 99.0),
                    dense_path_name(note_.dense), dense_path_factor(int8, note_.dense));
      s = buf;
    }
    if (forced_ || sparse_ == kAllExtents) return s;
    if (sparse_ == 0) return s + " (dense for all sizes)";
    // The extents that run sparse, e.g. " (sparse at 2-4, >= 8 rows)".
    std::string ranges;
    for (int i = 0; i < kNumExtentClasses; ++i) {
      if (!((sparse_ >> i) & 1u) || (i > 0 && ((sparse_ >> (i - 1)) & 1u))) continue;
      int j = i;
      while (j + 1 < kNumExtentClasses && ((sparse_ >> (j + 1)) & 1u)) ++j;
      const int64_t lo = kExtentClasses[i];
      ranges += ranges.empty() ? "" : ", ";
      if (j + 1 == kNumExtentClasses) ranges += ">= " + std::to_string(lo);
      else if (kExtentClasses[j + 1] - 1 == lo) ranges += std::to_string(lo);
      else ranges += std::to_string(lo) + "-" + std::to_string(kExtentClasses[j + 1] - 1);
    }
    return s + " (sparse at " + ranges + " " + unit + ", else dense)";
  }
  int64_t fallback_bytes() const { return fallback_->weight_bytes(); }

 private:
  bool forced_;
  ExtentClasses sparse_;
  CostNote note_;
  std::unique_ptr<DenseFallback> fallback_;
};

// "R=4 kr=2 density 0.19 stored 0.21 blocks 1x4" over a layer's packed groups.
template <class W>
std::string layout_str(const std::vector<std::shared_ptr<W>>& ws, bool int8) {
  double nnz = 0, stored = 0, size = 0;
  for (const auto& w : ws) {
    nnz += static_cast<double>(w->nnz);
    size += static_cast<double>(w->out) * static_cast<double>(w->in);
    if constexpr (std::is_same_v<W, SparseQ8Weights>) {
      stored += static_cast<double>(w->pairs) * 2 * w->block;
    } else {
      stored += static_cast<double>(w->entries) * w->block;
    }
  }
  const W& w0 = *ws[0];
  char buf[128];
  int kr = 1;
  if constexpr (std::is_same_v<W, SparseQ8Weights>) kr = w0.kr;
  std::snprintf(buf, sizeof(buf), "R=%d%s density %.2f stored %.2f blocks %dx%d", w0.block,
                !int8 || kr == 1 ? "" : kr == 2 ? " kr=2" : " kr=4", size > 0 ? nnz / size : 0.0,
                size > 0 ? stored / size : 0.0, w0.info.block_rows, w0.info.block_cols);
  return buf;
}

template <class W>
int64_t total_bytes(const std::vector<std::shared_ptr<W>>& ws) {
  int64_t n = 0;
  for (const auto& w : ws) n += w->bytes();
  return n;
}

// Pixels per gathered block: a multiple of the widest sparse tile (32), at least 128.
inline int64_t gather_block(int64_t k, int64_t pixels) {
  const int64_t fit = kGatherBlockElems / std::max<int64_t>(k, 1) / 32 * 32;
  const int64_t cols = std::max<int64_t>(128, fit);
  return std::min(cols, pixels);
}

}  // namespace sliver::ops::sparse
