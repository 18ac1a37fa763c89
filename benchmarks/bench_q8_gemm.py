"""8-bit GEMM throughput next to onnxruntime's MatMulInteger, same shapes, same process.

    python -m pytest benchmarks/bench_q8_gemm.py --benchmark-only -s     # pytest-benchmark
    python benchmarks/bench_q8_gemm.py [--threads 1 2] [--reps 7]       # plain table

GOPS = 2*M*N*K / seconds. Runs are interleaved (sliver, onnxruntime, sliver, ...) and the best
of `reps` is kept for each, so a busy machine hurts both alike. With one thread the table also
shows GOPS by process CPU time ("cpu"), which other processes on a shared machine disturb far
less than wall time. Rows:
  exact  - full-range s8 weights: the exact sign-magnitude kernel (the default on such weights)
  fast   - 7-bit weights: every panel is fast-safe, the classic vpmaddubsw chain runs
  ort    - onnxruntime MatMulInteger u8 x s8 (full-range weights; not exact on AVX2 w/o VNNI)
"%peak" is against the classic-chain ceiling per core (shared/peak: `run.sh compute`), set with
SLIVER_U8S8_PEAK_GOPS (default 195, measured on the Zen 3 dev machine) times the threads.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pytest

PEAK_PER_CORE = float(os.environ.get("SLIVER_U8S8_PEAK_GOPS", "195"))

# (label, M, N, K)
SHAPES = [
    ("square 1024", 1024, 1024, 1024),
    ("bert qkv s128", 128, 2304, 768),
    ("bert ffn1 s128", 128, 3072, 768),
    ("bert ffn2 s128", 128, 768, 3072),
    ("llm decode gemv", 1, 4096, 4096),
    ("r50 conv3x3 56x56x64", 3136, 64, 576),
    ("r50 conv1x1 56x56 256->64", 3136, 64, 256),
    ("r50 conv1x1 14x14 1024->256", 196, 256, 1024),
    ("r50 conv3x3 7x7x512", 49, 512, 4608),
    ("mbv2 pw 112x112 32->64", 12544, 64, 32),
]


def _testing():
    from sliver import _C

    return _C.testing


def _ort_matmulinteger(b: np.ndarray, threads: int):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    k, n = b.shape
    node = helper.make_node("MatMulInteger", ["a", "b", "za", "zb"], ["y"])
    inits = [
        numpy_helper.from_array(b, "b"),
        numpy_helper.from_array(np.array(128, np.uint8), "za"),
        numpy_helper.from_array(np.array(0, np.int8), "zb"),
    ]
    g = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [None, k])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [None, n])],
        inits,
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 10)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def compare(m: int, n: int, k: int, threads: int, reps: int = 7, seed: int = 0) -> dict:
    """Best-of-reps seconds and GOPS for sliver exact / fast and onnxruntime, interleaved."""
    T = _testing()
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    b_full = rng.integers(-128, 128, (k, n), dtype=np.int8)
    b_7bit = rng.integers(-64, 64, (k, n), dtype=np.int8)
    zero = np.zeros(1, np.int32)
    p_full, p_7bit = T.q8_pack_b(b_full, zero), T.q8_pack_b(b_7bit, zero)
    out = np.empty((m, n), np.int32)
    runs = {
        "exact": lambda: T.q8_gemm(a, p_full, 128, out, threads=threads),
        "fast": lambda: T.q8_gemm(a, p_7bit, 128, out, threads=threads),
    }
    try:
        sess = _ort_matmulinteger(b_full, threads)
        feeds = {"a": a}
        runs["ort"] = lambda: sess.run(None, feeds)
    except Exception:  # onnxruntime missing or refusing: report sliver alone
        pass
    best = {name: float("inf") for name in runs}
    best_cpu = {name: float("inf") for name in runs}
    # enough inner iterations that one timing is >= ~20 ms
    for fn in runs.values():
        fn()
    t0 = time.perf_counter()
    runs["exact"]()
    inner = max(1, int(0.02 / max(time.perf_counter() - t0, 1e-6)))
    for _ in range(reps):
        for name, fn in runs.items():
            t, c = time.perf_counter(), time.process_time()
            for _ in range(inner):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t) / inner)
            best_cpu[name] = min(best_cpu[name], (time.process_time() - c) / inner)
    ops = 2.0 * m * n * k
    res = {
        "threads": threads,
        "M": m,
        "N": n,
        "K": k,
        "fast_panels": f"{p_7bit.fast_panels}/{p_7bit.panels}",
    }
    for name, sec in best.items():
        res[f"{name}_gops"] = ops / sec * 1e-9
        res[f"{name}_pct_peak"] = 100 * ops / sec * 1e-9 / (PEAK_PER_CORE * threads)
        if threads == 1:
            res[f"{name}_cpu_gops"] = ops / max(best_cpu[name], 1e-9) * 1e-9
    return res


def format_row(label: str, r: dict) -> str:
    cells = [f"{label:30s} t={r['threads']}"]
    for name in ("fast", "exact", "ort"):
        if f"{name}_gops" in r:
            cell = f"{name} {r[name + '_gops']:6.1f} ({r[name + '_pct_peak']:4.1f}%)"
            if f"{name}_cpu_gops" in r:
                cell += f" cpu {r[name + '_cpu_gops']:6.1f}"
            cells.append(cell)
    return "  ".join(cells)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("label,m,n,k", SHAPES, ids=[s[0] for s in SHAPES])
def test_q8_gemm_vs_ort(benchmark, label, m, n, k, threads):
    pytest.importorskip("sliver._C")
    r = compare(m, n, k, threads)
    benchmark.extra_info.update(r)
    print("\n" + format_row(label, r))
    T = _testing()
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    packed = T.q8_pack_b(rng.integers(-128, 128, (k, n), dtype=np.int8), np.zeros(1, np.int32))
    out = np.empty((m, n), np.int32)
    benchmark.pedantic(
        lambda: T.q8_gemm(a, packed, 128, out, threads=threads),
        rounds=5,
        iterations=1,
        warmup_rounds=1,
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--only", default="", help="substring of the shape label")
    args = ap.parse_args()
    for label, m, n, k in SHAPES:
        if args.only not in label:
            continue
        for t in args.threads:
            print(format_row(label, compare(m, n, k, t, args.reps)), flush=True)


if __name__ == "__main__":
    main()
