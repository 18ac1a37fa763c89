// Output sizes and padding of sliding-window operators (Conv, pools) per ONNX's rules.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sliver/error.h"
#include "sliver/kernel.h"

namespace sliver::ops {

/// Window parameters along the spatial axes, as given by the attributes.
struct WindowAttrs {
  std::vector<int64_t> kernel, strides, dilations, pads;  // pads: begins then ends
  std::string auto_pad = "NOTSET";
  bool ceil_mode = false;

  /// Reads kernel_shape/strides/dilations/pads/auto_pad/ceil_mode for `nsp` spatial axes;
  /// `kernel` may come from the weights instead (Conv). False when an attribute is malformed.
  bool read(const Attrs& a, size_t nsp, const std::vector<int64_t>& kernel_from_weights = {}) {
    kernel = a.get_ints("kernel_shape", kernel_from_weights);
    strides = a.get_ints("strides", std::vector<int64_t>(nsp, 1));
    dilations = a.get_ints("dilations", std::vector<int64_t>(nsp, 1));
    pads = a.get_ints("pads", std::vector<int64_t>(2 * nsp, 0));
    auto_pad = a.get_string("auto_pad", "NOTSET");
    ceil_mode = a.get_int("ceil_mode", 0) != 0;
    if (kernel.size() != nsp || strides.size() != nsp || dilations.size() != nsp ||
        pads.size() != 2 * nsp)
      return false;
    for (size_t i = 0; i < nsp; ++i)
      if (kernel[i] < 1 || strides[i] < 1 || dilations[i] < 1 || pads[i] < 0 || pads[nsp + i] < 0)
        return false;
    return auto_pad == "NOTSET" || auto_pad == "VALID" || auto_pad == "SAME_UPPER" ||
           auto_pad == "SAME_LOWER";
  }
};

/// One spatial axis resolved for an input size: output size and the padding actually applied.
struct AxisGeom {
  int64_t in, out, k, s, d, pad_begin, pad_end;
};

/// Resolves axis i of `w` for input extent `in` (auto_pad and ceil_mode included).
inline AxisGeom resolve_axis(const WindowAttrs& w, size_t i, int64_t in) {
  const size_t nsp = w.kernel.size();
  AxisGeom g{in, 0, w.kernel[i], w.strides[i], w.dilations[i], w.pads[i], w.pads[nsp + i]};
  const int64_t span = (g.k - 1) * g.d + 1;
  if (w.auto_pad == "VALID") {
    g.pad_begin = g.pad_end = 0;
    g.out = in >= span ? (in - span) / g.s + 1 : 0;
  } else if (w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER") {
    g.out = (in + g.s - 1) / g.s;
    const int64_t total = std::max<int64_t>(0, (g.out - 1) * g.s + span - in);
    g.pad_begin = w.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    g.pad_end = total - g.pad_begin;
  } else {
    const int64_t avail = in + g.pad_begin + g.pad_end - span;
    if (avail < 0) {
      g.out = 0;
    } else if (w.ceil_mode) {
      g.out = (avail + g.s - 1) / g.s + 1;
      // A last window that would start inside the end padding is dropped.
      if ((g.out - 1) * g.s >= in + g.pad_begin) --g.out;
    } else {
      g.out = avail / g.s + 1;
    }
  }
  return g;
}

/// A 2-D convolution's geometry (1-D runs as 2-D with a trivial height axis).
struct ConvGeom {
  int64_t n, c, m, group;  // images, input channels, output channels, groups
  AxisGeom h, w;
  int64_t in_plane() const { return h.in * w.in; }
  int64_t out_plane() const { return h.out * w.out; }
};

/// Extent of input an axis' windows touch, counted from the start of the padding.
inline int64_t window_extent(const AxisGeom& a) { return (a.out - 1) * a.s + (a.k - 1) * a.d + 1; }

}  // namespace sliver::ops
