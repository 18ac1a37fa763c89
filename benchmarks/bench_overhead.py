"""The run loop's own cost: per run() and per node, sliver vs onnxruntime.

    python benchmarks/bench_overhead.py            # or: pytest benchmarks/bench_overhead.py -s

Chains of N Relu nodes on a 16-float tensor, graph optimizations off on both engines so every
node runs: the slope over N is the per-node cost of the loop (dispatch, slot bookkeeping,
allocation), the intercept the per-run() cost (feeds, Python crossing, results).
"""

from __future__ import annotations

import numpy as np
import onnxruntime
import sliver
from onnx import TensorProto, helper
from sliver.cli import interleaved_latency

LENGTHS = (1, 64)


def relu_chain(n: int) -> bytes:
    """x -> Relu -> ... -> Relu (n nodes)."""
    nodes = [helper.make_node("Relu", [f"x{i}"], [f"x{i + 1}"]) for i in range(n)]
    g = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x0", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info(f"x{n}", TensorProto.FLOAT, [1, 16])],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def measure(repeat: int = 2000) -> dict[str, dict[int, float]]:
    """Median microseconds per run for each chain length, per engine."""
    out: dict[str, dict[int, float]] = {"sliver": {}, "ort": {}}
    x = {"x0": np.random.default_rng(0).standard_normal((1, 16)).astype(np.float32)}
    for n in LENGTHS:
        so = sliver.SessionOptions()
        so.intra_op_num_threads = 1
        so.graph_optimization_level = sliver.GraphOptimizationLevel.ORT_DISABLE_ALL
        oo = onnxruntime.SessionOptions()
        oo.intra_op_num_threads = 1
        oo.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        s = sliver.InferenceSession(relu_chain(n), so)
        o = onnxruntime.InferenceSession(relu_chain(n), oo, providers=["CPUExecutionProvider"])
        med = interleaved_latency(
            {"sliver": lambda s=s: s.run(None, x), "ort": lambda o=o: o.run(None, x)}, repeat
        )
        for k, v in med.items():
            out[k][n] = v * 1e6
    return out


def report(m: dict[str, dict[int, float]]) -> str:
    """One line per engine: per-run and per-node microseconds."""
    lo, hi = LENGTHS
    lines = []
    for k, t in m.items():
        per_node = (t[hi] - t[lo]) / (hi - lo)
        lines.append(f"{k:7s} run() {t[lo]:6.2f} us   per node {per_node:5.3f} us")
    return "\n".join(lines)


def test_run_loop_overhead(benchmark) -> None:
    """Records the figures in pytest-benchmark's extra_info (not a pass/fail timing)."""
    m = measure()
    benchmark.extra_info.update({f"{k}_{n}": v for k, t in m.items() for n, v in t.items()})
    print("\n" + report(m))
    s = sliver.InferenceSession(relu_chain(LENGTHS[-1]))
    x = {"x0": np.zeros((1, 16), np.float32)}
    benchmark.pedantic(lambda: s.run(None, x), rounds=200, iterations=1, warmup_rounds=5)


if __name__ == "__main__":
    print(report(measure()))
