"""Re-measures the sparse-vs-dense cost model on this CPU, layer by layer and model by model.

    python benchmarks/calibrate_sparse.py                    # layers: FP32 and INT8, 1 thread
    python benchmarks/calibrate_sparse.py --dtype f32 --family cnn_resnet --reps 60
    python benchmarks/calibrate_sparse.py --zoo /tmp/zoo     # whole pruned zoo models

Layers. Every weight layer of the zoo's FP32 base models (tools/model_zoo.py; the shapes at the
default feeds) becomes a single-layer model, FP32 (Conv / Gemm / MatMul + Relu) or QDQ INT8 (the
passes turn it into sliver:QLinearConv channels-last or a QLinearMatMul, like the zoo's QDQ
models; an INT8 conv that is not a stem reads the output of a dense 1x1 conv first, so it sits
inside the channels-last region as it does in the zoo). Its weights are pruned at random to the
densities of --densities (default 30/50/80/90/95% zeros) and the layer's step is timed in
sessions with sliver.sparse forced to "dense" and to "sparse" (per-step times of the native
profile, the two sessions alternating, median of --reps runs). The sparse kernel's description
carries the cost model's verdict ("cost 0.42 vs conv_winograd x1.60": the relative cost, the
dense path and its factor; sparse_ops.h), so auto's choice is known without a third session.
Printed per layer: the dense path, dense time / sparse time per density with the stored density
and auto's choice (S/D; * marks a choice slower than the other engine by more than --noise).
Then, per dense path, the factor (sparse_driver.cc: kDensePaths) that minimises the time lost to
wrong choices beyond --noise, with the range of equally good factors: copy the new ones into
kDensePaths with the figures printed here, on another CPU too.

Zoo (--zoo DIR). The pruned models of DIR run dense, sparse and auto, interleaved, 1 thread,
thread CPU time: auto's median must be within --noise of the faster of the other two.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import sliver
from onnx import TensorProto, helper, numpy_helper
from sliver.tools import model_zoo as mz

DENSITIES = (0.7, 0.5, 0.2, 0.1, 0.05)
CONV_OPS = ("Conv", "sliver:FusedConv")
LINEAR_OPS = ("Gemm", "sliver:FusedGemm", "MatMul", "sliver:FusedMatMul")
WEIGHT_OPS = (
    CONV_OPS
    + LINEAR_OPS
    + (
        "sliver:QLinearConv",
        "sliver:QLinearMatMul",
        "QLinearMatMul",
        "QLinearConv",
        "com.microsoft:QGemm",
    )
)
CONV_ATTRS = ("strides", "pads", "dilations", "group", "kernel_shape", "auto_pad")


@dataclass
class Layer:
    """One weight layer of a zoo model: Conv (w [M, C/g, kh, kw]) or a linear layer (w [K, N])."""

    family: str
    name: str
    op: str  # Conv, Gemm or MatMul
    x_shape: tuple[int, ...]
    w_shape: tuple[int, ...]
    attrs: dict = field(default_factory=dict)
    stem: bool = False  # reads a graph input

    def label(self) -> str:
        """A short description: family/node, op, channels, kernel, stride, input size."""
        if self.op == "Conv":
            s = self.attrs.get("strides", [1])[0]
            g = self.attrs.get("group", 1)
            m, c, *k = self.w_shape
            return (
                f"{self.family}/{self.name} conv {c * g}->{m} {'x'.join(map(str, k))}"
                f"{f' s{s}' if s != 1 else ''}{f' g{g}' if g != 1 else ''} on "
                f"{'x'.join(map(str, self.x_shape[2:]))}"
            )
        rows = int(np.prod(self.x_shape[:-1]))
        k, n = self.w_shape
        return f"{self.family}/{self.name} {self.op.lower()} {rows}x{k} * {k}x{n}"


def zoo_layers(families: list[str]) -> list[Layer]:
    """The weight layers (depthwise convs excluded: never sparse) of the families' FP32 models,
    with static shapes at the default feeds."""
    layers = []
    for fam in families:
        model = getattr(mz, f"build_{fam}")()
        feeds = mz.make_feeds(fam)
        for inp in model.graph.input:  # static shapes, so the compiled graph has them all
            dims = inp.type.tensor_type.shape.dim
            for d, v in zip(dims, feeds[inp.name].shape, strict=True):
                d.Clear()
                d.dim_value = v
        so = sliver.SessionOptions()
        so.add_session_config_entry("sliver.sparse", "dense")
        sess = sliver.InferenceSession(model.SerializeToString(), so)
        g = sess.graph
        graph_inputs = {v.name for v in g.inputs}
        seen = set()
        for n in g.nodes:
            if n.key not in CONV_OPS + LINEAR_OPS or n.inputs[1] not in g.initializers:
                continue
            w = g.initializers[n.inputs[1]]
            x = tuple(int(v) for v in g.value(n.inputs[0]).shape)
            if n.key in CONV_OPS:
                group = int(n.attrs.get("group", 1))
                if w.shape[1] == 1 and w.shape[0] == group and group > 1:
                    continue
                attrs = {k: v for k, v in n.attrs.items() if k in CONV_ATTRS}
                op = "Conv"
            else:
                op = "Gemm" if "Gemm" in n.key else "MatMul"
                trans = op == "Gemm" and int(n.attrs.get("transB", 0))
                w = w.T if trans else w  # always [K, N] here
                attrs = {}
            key = (op, x, w.shape, tuple(sorted((k, str(v)) for k, v in attrs.items())))
            if key in seen:
                continue
            seen.add(key)
            layers.append(
                Layer(fam, n.name, op, x, tuple(w.shape), attrs, n.inputs[0] in graph_inputs)
            )
    return layers


def pruned(
    rng: np.random.Generator, shape: tuple[int, ...], density: float, int8: bool, out_axis: int
) -> np.ndarray:
    """Random weights with `density` of them nonzero (unstructured)."""
    keep = rng.random(shape) < density
    if int8:
        w = rng.integers(1, 128, shape) * rng.choice([-1, 1], shape)
        return np.where(keep, w, 0).astype(np.int8)
    fan_in = int(np.prod(shape)) // shape[out_axis]
    w = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in / density)
    return np.where(keep, w, 0).astype(np.float32)


def _model(nodes: list, x_shape: tuple[int, ...], inits: list, out: str) -> bytes:
    g = helper.make_graph(
        nodes,
        "layer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def f32_model(layer: Layer, density: float, seed: int) -> bytes:
    """x -> Conv/Gemm/MatMul (pruned weights, bias) -> Relu."""
    rng = np.random.default_rng(seed)
    if layer.op == "Conv":
        w = pruned(rng, layer.w_shape, density, False, 0)
        b = rng.standard_normal(layer.w_shape[0]).astype(np.float32) * 0.05
        inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
        nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], **layer.attrs)]
    else:
        w = pruned(rng, layer.w_shape[::-1], density, False, 0).T.copy()  # pruned as [N, K]
        b = rng.standard_normal(layer.w_shape[1]).astype(np.float32) * 0.05
        inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
        ins = ["x", "w", "b"] if layer.op == "Gemm" else ["x", "w"]
        nodes = [helper.make_node(layer.op, ins, ["c"])]
    nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    return _model(nodes, layer.x_shape, inits, "y")


def q8_model(layer: Layer, density: float, seed: int) -> bytes:
    """The QDQ form of the layer (s8 activations and weights, int32 bias, Relu), after a dense
    1x1 QDQ conv unless it is a stem."""
    rng = np.random.default_rng(seed)
    xs, ws, ys = 0.05, 0.01, 0.1
    inits = [
        numpy_helper.from_array(np.array(v, np.float32), n)
        for v, n in ((xs, "xs"), (ws, "ws"), (ys, "ys"))
    ]
    inits.append(numpy_helper.from_array(np.array(0, np.int8), "z"))
    inits.append(numpy_helper.from_array(np.array(xs * ws, np.float32), "bs"))
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "z"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "z"], ["xd"]),
    ]
    src = "xd"
    conv = layer.op == "Conv"
    if conv and not layer.stem:  # the pre-conv: C -> C, dense
        c = layer.x_shape[1]
        w0 = rng.integers(-127, 128, (c, c, 1, 1)).astype(np.int8)
        inits.append(numpy_helper.from_array(w0, "w0"))
        nodes += [
            helper.make_node("DequantizeLinear", ["w0", "ws", "z"], ["w0d"]),
            helper.make_node("Conv", ["xd", "w0d"], ["c0"]),
            helper.make_node("QuantizeLinear", ["c0", "xs", "z"], ["c0q"]),
            helper.make_node("DequantizeLinear", ["c0q", "xs", "z"], ["c0d"]),
        ]
        src = "c0d"
    if conv:
        w = pruned(rng, layer.w_shape, density, True, 0)
        n_out = layer.w_shape[0]
    else:
        w = pruned(rng, layer.w_shape[::-1], density, True, 0).T.copy()
        n_out = layer.w_shape[1]
    b = rng.integers(-1000, 1000, n_out).astype(np.int32)
    inits += [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    nodes.append(helper.make_node("DequantizeLinear", ["w", "ws", "z"], ["wd"]))
    if conv:
        nodes.append(helper.make_node("DequantizeLinear", ["b", "bs"], ["bd"]))
    if conv:  # with its bias and Relu, as the zoo's convs
        nodes += [
            helper.make_node("Conv", [src, "wd", "bd"], ["c"], **layer.attrs),
            helper.make_node("Relu", ["c"], ["r"]),
        ]
    else:  # a plain MatMul (onnxruntime's quantizer leaves the bias Add outside)
        nodes.append(helper.make_node("MatMul", [src, "wd"], ["r"]))
    nodes += [
        helper.make_node("QuantizeLinear", ["r", "ys", "z"], ["yq"]),
        helper.make_node("DequantizeLinear", ["yq", "ys", "z"], ["y"]),
    ]
    return _model(nodes, layer.x_shape, inits, "y")


def session(model: bytes | str, mode: str, threads: int = 1) -> sliver.InferenceSession:
    """A session with sliver.sparse = mode (auto, dense or sparse)."""
    so = sliver.SessionOptions()
    so.intra_op_num_threads = threads
    so.add_session_config_entry("sliver.sparse", mode)
    return sliver.InferenceSession(model, so)


def profiled_run(sess: sliver.InferenceSession, feeds: dict[str, np.ndarray]) -> list[float]:
    """Seconds per step of one run (the native profile)."""
    p = sess._plan
    ins = [sess._check_feed(n, feeds[n]) for n in p.input_names]
    return p.native.run(ins, list(range(len(p.output_names))), sess._pool, True)[1]


def time_steps(
    sessions: list[sliver.InferenceSession], feeds: dict[str, np.ndarray], reps: int
) -> list[np.ndarray]:
    """Median seconds per step of each session, the sessions alternating run by run."""
    for _ in range(3):
        for s in sessions:
            profiled_run(s, feeds)
    times: list[list[list[float]]] = [[] for _ in sessions]
    for _ in range(reps):
        for i, s in enumerate(sessions):
            times[i].append(profiled_run(s, feeds))
    return [np.median(np.array(t), axis=0) for t in times]


@dataclass
class Point:
    """One layer at one density."""

    layer: str
    dtype: str
    path: str  # the cost model's dense path
    factor: float  # its factor now
    cost: float  # the relative cost now (sparse predicted faster at <= 1)
    density: float  # stored density
    dense_s: float
    sparse_s: float
    layout: str

    @property
    def auto_sparse(self) -> bool:
        return self.cost <= 1.0


def parse_describe(desc: str) -> tuple[float, str, float, float, str]:
    """(cost, path, factor, stored density, layout) from a sparse kernel's description."""
    cost, _, path, factor = desc.split(" cost ")[1].split()[:4]
    stored = float(desc.split(" stored ")[1].split()[0])
    layout = "R=" + desc.split(" R=")[1].split(" density")[0]
    return float(cost), path, float(factor.lstrip("x")), stored, layout


def measure_layer(
    layer: Layer, dtype: str, densities: list[float], reps: int, seed: int
) -> list[Point]:
    """The layer's dense and sparse step times and the cost model's verdict, per density."""
    feeds = {"x": np.random.default_rng(seed).standard_normal(layer.x_shape).astype(np.float32)}
    points = []
    for d in densities:
        model = (f32_model if dtype == "f32" else q8_model)(layer, d, seed)
        dn, sp = session(model, "dense"), session(model, "sparse")
        i = [i for i, (_, op, _) in enumerate(sp.profile_steps()) if op in WEIGHT_OPS][-1]
        desc = sp.profile_steps()[i][2]
        if not desc.startswith("sparse") or " cost " not in desc:
            continue  # no sparse kernel for this layer
        cost, path, factor, stored, layout = parse_describe(desc)
        td, ts = time_steps([dn, sp], feeds, reps)
        points.append(Point(layer.label(), dtype, path, factor, cost, stored, td[i], ts[i], layout))
    return points


def regret(p: Point, sparse: bool) -> float:
    """How much slower the choice is than the faster engine (0 = right)."""
    return (p.sparse_s if sparse else p.dense_s) / min(p.sparse_s, p.dense_s) - 1


def loss(points: list[Point], scale: float, noise: float) -> float:
    """Summed regret beyond noise when every cost is multiplied by `scale`."""
    return sum(max(0.0, regret(p, p.cost * scale <= 1.0) - noise) for p in points)


def fit_factor(points: list[Point], noise: float) -> tuple[float, float, float, float]:
    """The path factor minimising the summed regret beyond noise (the middle of the best range
    on a log scale), that regret, and the range."""
    scales = np.geomspace(1 / 16, 16, 321)
    losses = [loss(points, s, noise) for s in scales]
    best = min(losses)
    good = [s for s, v in zip(scales, losses, strict=True) if v <= best + 1e-9]
    # The best scales form a range when the data allow it; its geometric middle is the most
    # robust choice (equally far from the two nearest wrong decisions).
    mid = math.sqrt(good[0] * good[-1])
    f = points[0].factor
    return f * mid, best, f * good[0], f * good[-1]


def cmd_layers(args: argparse.Namespace) -> None:
    """Single-layer measurements and the fitted path factors."""
    layers = zoo_layers(args.family or list(mz.FAMILIES))
    dtypes = ["f32", "q8"] if args.dtype == "both" else [args.dtype]
    points: list[Point] = []
    for dtype in dtypes:
        print(
            f"\n{dtype}: dense/sparse time per density (stored density in brackets); "
            f"auto: S/D, * = wrong by more than {args.noise:.0%}"
        )
        for layer in layers:
            ps = measure_layer(layer, dtype, list(args.densities), args.reps, args.seed)
            if not ps:
                continue
            points += ps
            cells = []
            for p in ps:
                r = regret(p, p.auto_sparse)
                cells.append(
                    f"{p.dense_s / p.sparse_s:5.2f} ({p.density:.2f}) "
                    f"{'S' if p.auto_sparse else 'D'}{'*' if r > args.noise else ' '}"
                )
            print(
                f"  {layer.label():52s} {ps[0].path:14s} {ps[0].layout:10s} "
                f"dense {ps[0].dense_s * 1e6:7.1f}us | " + " | ".join(cells),
                flush=True,
            )
    print(
        "\nper dense path: points, wrong now (regret > noise), summed regret beyond noise now "
        "-> the factor that minimises it (sparse_driver.cc: kDensePaths)"
    )
    for dtype in dtypes:
        by_path = defaultdict(list)
        for p in points:
            if p.dtype == dtype:
                by_path[p.path].append(p)
        for path, ps in sorted(by_path.items()):
            now = loss(ps, 1.0, args.noise)
            wrong = sum(regret(p, p.auto_sparse) > args.noise for p in ps)
            f, best, lo, hi = fit_factor(ps, args.noise)
            print(
                f"  {dtype} {path:14s} {len(ps):3d} points, {wrong:2d} wrong, regret {now:5.2f} "
                f"(factor {ps[0].factor:.2f}) -> factor {f:.2f} (any of {lo:.2f}-{hi:.2f}), "
                f"regret {best:.2f}"
            )


def cmd_zoo(args: argparse.Namespace) -> None:
    """Auto against dense and sparse on every pruned zoo model."""
    names = [n for n, s in mz.REGISTRY.items() if s.sparsity > 0]
    if args.family:
        names = [n for n in names if mz.REGISTRY[n].family in args.family]
    print("model: median ms dense / sparse / auto; auto vs the faster (ratio < 1 - noise: *)")
    for name in names:
        path = f"{args.zoo}/{name}.onnx"
        feeds = mz.make_feeds(name, seed=0)
        sess = [session(path, m) for m in ("dense", "sparse", "auto")]
        for _ in range(5):
            for s in sess:
                s.run(None, feeds)
        times: list[list[float]] = [[], [], []]
        for _ in range(args.reps):
            for i, s in enumerate(sess):
                t = time.thread_time()
                s.run(None, feeds)
                times[i].append(time.thread_time() - t)
        d, s, a = (float(np.median(t)) * 1e3 for t in times)
        r = min(d, s) / a
        print(
            f"  {name:30s} {d:7.3f} {s:7.3f} {a:7.3f}  auto/best {r:5.2f}"
            f"{' *' if r < 1 - args.noise else ''}",
            flush=True,
        )


def main() -> None:
    """Command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dtype", choices=["f32", "q8", "both"], default="both")
    ap.add_argument("--family", action="append", choices=list(mz.FAMILIES))
    ap.add_argument("--densities", type=float, nargs="+", default=DENSITIES)
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--noise", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--zoo", help="directory of zoo models: check auto on the pruned ones")
    args = ap.parse_args()
    if args.zoo:
        cmd_zoo(args)
    else:
        cmd_layers(args)


if __name__ == "__main__":
    main()
