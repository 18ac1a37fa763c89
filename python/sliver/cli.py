"""The ``sliver`` command: run, inspect, bench, profile a model, and the bundled demo."""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx

from .options import SessionOptions
from .session import InferenceSession

DATA_DIR = os.path.join(os.path.dirname(__file__), "data")
DEMO_MODEL = os.path.join(DATA_DIR, "digits_cnn_int8_pruned.onnx")
DEMO_DATA = os.path.join(DATA_DIR, "digits_test.npz")


def _np_dtype(type_str: str) -> np.dtype:
    name = type_str[len("tensor(") : -1] if type_str.startswith("tensor(") else "float"
    return np.dtype({"float": "float32", "double": "float64", "string": "object"}.get(name, name))


def random_feeds(sess: Any, dims: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs shaped from the model; symbolic dims from ``dims`` or 1."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else dims.get(str(d), 1) for d in (i.shape or [])]
        dt = _np_dtype(i.type)
        if dt.kind == "f":
            feeds[i.name] = rng.standard_normal(shape).astype(dt)
        elif dt.kind in "iu":
            feeds[i.name] = rng.integers(0, 10, size=shape).astype(dt)
        elif dt.kind == "b":
            feeds[i.name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            feeds[i.name] = np.full(shape, "a", dtype=object)
    return feeds


def _parse_pairs(items: Sequence[str], what: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"--{what} expects NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k] = v
    return out


def _session(
    path: str, threads: int, level: int | None = None, sparse: str | None = None
) -> InferenceSession:
    so = SessionOptions()
    so.intra_op_num_threads = threads
    if level is not None:
        so.graph_optimization_level = level
    if sparse is not None:
        so.add_session_config_entry("sliver.sparse", sparse)
    return InferenceSession(path, so)


def packed_weight_bytes(sess: InferenceSession) -> list[int]:
    """Bytes of packed weights each compiled step's kernel holds (0 where none or unreported)."""
    return list(sess._plan.native.step_weight_bytes())


def layer_report(sess: InferenceSession) -> list[tuple[str, str, str, int]]:
    """(node, op, kernel description, packed bytes) for every step that holds packed weights
    or runs on sparse weights: the kernel strings carry the sparse format, block height R,
    density and block pattern (e.g. ``sparse f32_spmm_left conv_1x1 R=1 density 0.10 ...``)."""
    steps = zip(sess.profile_steps(), packed_weight_bytes(sess), strict=True)
    return [
        (name, op, impl, nbytes)
        for (name, op, impl), nbytes in steps
        if nbytes > 0 or impl.startswith("sparse")
    ]


def _time_runs(run, repeat: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return times


def cmd_run(args: argparse.Namespace) -> int:
    sess = _session(args.model, args.threads)
    dims = {k: int(v) for k, v in _parse_pairs(args.dim, "dim").items()}
    feeds = random_feeds(sess, dims, args.seed)
    for name, path in _parse_pairs(args.input, "input").items():
        feeds[name] = np.load(path, allow_pickle=False)
    outs = sess.run(None, feeds)
    times = _time_runs(lambda: sess.run(None, feeds), args.repeat, warmup=0)
    for o, v in zip(sess.get_outputs(), outs, strict=True):
        v = np.asarray(v)
        summary = ""
        if v.dtype.kind in "fiub" and v.size:
            summary = f" min {v.min():.6g} max {v.max():.6g} mean {v.astype(np.float64).mean():.6g}"
        print(f"{o.name}: {v.dtype} {list(v.shape)}{summary}")
        if args.save:
            np.save(os.path.join(args.save, f"{o.name.replace('/', '_')}.npy"), v)
    print(f"latency: median {np.median(times) * 1e3:.3f} ms over {len(times)} runs")
    return 0


def weight_report(model: onnx.ModelProto) -> list[tuple[str, str, tuple, float, str]]:
    """(name, dtype, shape, zero fraction, quantization) for every initializer of >= 16 elements."""
    dq_inputs = {}
    for n in model.graph.node:
        if n.op_type == "DequantizeLinear" and n.input:
            dq_inputs[n.input[0]] = (
                "per-channel" if any(a.name == "axis" for a in n.attribute) else "QDQ"
            )
        if n.op_type in ("QLinearConv", "QLinearMatMul", "MatMulInteger", "ConvInteger", "QGemm"):
            for i in n.input:
                dq_inputs.setdefault(i, n.op_type)
    rows = []
    for t in model.graph.initializer:
        arr = onnx.numpy_helper.to_array(t)
        if arr.size < 16 or arr.dtype == object:
            continue
        zp_frac = float(np.mean(arr == 0))
        rows.append((t.name, str(arr.dtype), arr.shape, zp_frac, dq_inputs.get(t.name, "")))
    return rows


def cmd_inspect(args: argparse.Namespace) -> int:
    model = onnx.load(args.model)
    print(f"model: {args.model}")
    opsets = ", ".join(f"{o.domain or 'ai.onnx'}={o.version}" for o in model.opset_import)
    print(f"opsets: {opsets}")
    sess = _session(args.model, 1, sparse=args.sparse)
    for kind, items in (("input", sess.get_inputs()), ("output", sess.get_outputs())):
        for i in items:
            print(f"{kind}: {i.name} {i.type} {i.shape}")
    hist = collections.Counter(
        (n.domain + ":" if n.domain else "") + n.op_type for n in model.graph.node
    )
    print("ops (as written): " + ", ".join(f"{k} x{v}" for k, v in hist.most_common()))
    impls = collections.Counter((op, impl) for _, op, impl in sess.profile_steps())
    print("compiled steps (op -> implementation):")
    for (op, impl), count in sorted(impls.items()):
        print(f"  {op:28s} {impl:40s} x{count}")
    print("weights (name, dtype, shape, zero fraction, quantization):")
    for name, dt, shape, zf, q in weight_report(model):
        print(f"  {name:40s} {dt:8s} {str(list(shape)):20s} zeros {zf:6.1%} {q}")
    layers = layer_report(sess)
    n_sparse = sum(impl.startswith("sparse") for _, _, impl, _ in layers)
    total = sum(packed_weight_bytes(sess))
    print(
        f"weight layers ({n_sparse} sparse of {len(layers)}; packed weights {total} bytes, "
        f"sliver.sparse={args.sparse or 'auto'}):"
    )
    for name, op, impl, nbytes in layers:
        print(f"  {name:32s} {op:22s} {nbytes:10d} B  {impl}")
    return 0


def _ort_session(path: str, threads: int) -> Any | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def interleaved_latency(runs: dict[str, Any], repeat: int) -> dict[str, float]:
    """Median seconds per call for each named callable, timed round-robin to share the noise."""
    for fn in runs.values():
        fn()
        fn()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeat):
        for k, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def cmd_bench(args: argparse.Namespace) -> int:
    sess = _session(args.model, args.threads)
    dims = {k: int(v) for k, v in _parse_pairs(args.dim, "dim").items()}
    feeds = random_feeds(sess, dims, args.seed)
    runs = {"sliver": lambda: sess.run(None, feeds)}
    ort_sess = _ort_session(args.model, args.threads)
    if ort_sess is not None:
        runs["onnxruntime"] = lambda: ort_sess.run(None, feeds)
    med = interleaved_latency(runs, args.repeat)
    for k, v in med.items():
        print(f"{k:12s} {v * 1e3:9.3f} ms")
    if "onnxruntime" in med:
        print(f"onnxruntime/sliver: {med['onnxruntime'] / med['sliver']:.2f}x")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    so = SessionOptions()
    so.intra_op_num_threads = args.threads
    so.enable_profiling = True
    sess = InferenceSession(args.model, so)
    feeds = random_feeds(sess, {k: int(v) for k, v in _parse_pairs(args.dim, "dim").items()})
    for _ in range(args.repeat):
        sess.run(None, feeds)
    per_op: dict[tuple[str, str], float] = collections.defaultdict(float)
    total = 0.0
    for ev in sess._profile or []:
        per_op[(ev["args"]["op_name"], ev["args"]["provider"])] += ev["dur"]
        total += ev["dur"]
    path = sess.end_profiling()
    print(f"{'op':28s} {'implementation':40s} {'ms/run':>9s} {'share':>7s}")
    for (op, impl), us in sorted(per_op.items(), key=lambda kv: -kv[1]):
        print(f"{op:28s} {impl:40s} {us / 1e3 / args.repeat:9.3f} {us / max(total, 1e-9):7.1%}")
    print(f"trace: {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: the bundled 80%-pruned INT8 digits CNN on sliver and onnxruntime."""
    data = np.load(DEMO_DATA)
    x, y = data["images"], data["labels"]
    sess = _session(DEMO_MODEL, args.threads)
    print(f"model: {DEMO_MODEL}")
    rows = weight_report(onnx.load(DEMO_MODEL))
    big = [r for r in rows if r[1] in ("int8", "uint8") and len(r[2]) > 1]
    if big:
        print(
            f"quantized weights: {len(big)} tensors, "
            f"{np.mean([r[3] for r in big]):.0%} zeros on average"
        )
    engines = {"sliver": sess}
    ort_sess = _ort_session(DEMO_MODEL, args.threads)
    if ort_sess is not None:
        engines["onnxruntime"] = ort_sess
    in_name = sess.get_inputs()[0].name
    acc = {}
    for k, s in engines.items():
        logits = s.run(None, {in_name: x})[0]
        acc[k] = float(np.mean(np.argmax(logits, axis=1) == y))
    one = x[:1]
    lat1 = interleaved_latency(
        {k: (lambda s=s: s.run(None, {in_name: one})) for k, s in engines.items()}, args.repeat
    )
    latb = interleaved_latency(
        {k: (lambda s=s: s.run(None, {in_name: x})) for k, s in engines.items()},
        max(args.repeat // 10, 5),
    )
    print(f"test images: {len(y)}; threads: {args.threads or 'all'}")
    print(f"{'engine':12s} {'accuracy':>9s} {'batch 1 (ms)':>13s} {f'batch {len(y)} (ms)':>16s}")
    for k in engines:
        print(f"{k:12s} {acc[k]:9.2%} {lat1[k] * 1e3:13.3f} {latb[k] * 1e3:16.3f}")
    if "onnxruntime" in engines:
        print(
            f"speedup onnxruntime/sliver: batch 1 {lat1['onnxruntime'] / lat1['sliver']:.2f}x, "
            f"batch {len(y)} {latb['onnxruntime'] / latb['sliver']:.2f}x"
        )
    else:
        print("(onnxruntime not installed: no comparison)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sliver`` console script."""
    p = argparse.ArgumentParser(prog="sliver", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp: argparse.ArgumentParser, model: bool = True) -> None:
        if model:
            sp.add_argument("model", help="path to an .onnx file")
        sp.add_argument("--threads", type=int, default=0, help="intra-op threads (0: all cores)")
        sp.add_argument("--repeat", type=int, default=20, help="timed runs")
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument(
            "--dim", action="append", default=[], metavar="NAME=V", help="value of a symbolic dim"
        )

    sp = sub.add_parser("run", help="run a model on given or random inputs")
    common(sp)
    sp.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    sp.add_argument("--save", metavar="DIR", help="save outputs as .npy files here")
    sp.set_defaults(fn=cmd_run)
    sp = sub.add_parser("inspect", help="inputs, outputs, ops, kernels chosen, weights")
    sp.add_argument("model")
    sp.add_argument(
        "--sparse",
        choices=["auto", "dense", "sparse"],
        default=None,
        help="sliver.sparse for the inspected session (default auto)",
    )
    sp.set_defaults(fn=cmd_inspect)
    sp = sub.add_parser("bench", help="latency on sliver and onnxruntime, interleaved")
    common(sp)
    sp.set_defaults(fn=cmd_bench)
    sp = sub.add_parser("profile", help="time per op kind")
    common(sp)
    sp.set_defaults(fn=cmd_profile)
    sp = sub.add_parser("demo", help="the bundled pruned INT8 digits CNN: accuracy and latency")
    common(sp, model=False)
    sp.set_defaults(fn=cmd_demo)
    args = p.parse_args(argv)
    return int(args.fn(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
