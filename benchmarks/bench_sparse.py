"""Sparse-weight kernels vs the dense ones on the same layer, by density.

    python benchmarks/bench_sparse.py                         # the default table, 1 thread
    python benchmarks/bench_sparse.py --dtype q8 --threads 2  # INT8, 2 threads (wall time)
    python benchmarks/bench_sparse.py --crossover             # densities 0.05..0.6 + crossovers
    python -m pytest benchmarks/bench_sparse.py --benchmark-only -s

Effective GFLOPS (GOPS for INT8) = 2 * out * in * cols (the dense-equivalent multiply-adds) /
seconds, so sparse and dense share one scale and their ratio is the speedup. Dense is the
packed-weight f32_gemm (Conv layout: weights as A, activations as B) or qgemm (u8 x s8 with a
requantized u8 output, the INT8 conv/matmul path), sparse the f32/q8 spmm on the same pruned
weights. Single-threaded runs are timed in thread CPU time (a shared machine's other processes
do not inflate it), multi-threaded ones in wall time; each figure is the best of --reps batches,
dense and sparse alternating. Patterns: unstructured (random), 4x1 / 8x1 (blocks of consecutive
output channels), 1x4 (consecutive inputs, what tools/model_zoo.py's block pruning makes). The
layout column is the packing the cost model chose: Rx1 blocks, c2 = INT8 aligned input pairs,
q4 = INT8 quads (pairs of pairs on a uint8 panel), c4 = INT8 aligned groups of 4 inputs (VNNI).
The crossover is the density where the speedup interpolates to 1 (sparse_driver.cc's table).
"""

from __future__ import annotations

import argparse
import platform

import numpy as np
import pytest

# (label, layout, out, in, cols): left = Conv (Y[out, pixels] = W X), right = MatMul (Y = X W).
SHAPES = {
    "conv3x3": ("left", 256, 256 * 9, 28 * 28),  # ResNet stage-3 3x3 conv as im2col
    "conv1x1": ("left", 256, 1024, 14 * 14),  # ResNet bottleneck 1x1 reduce
    "bert_ffn1": ("right", 3072, 768, 128),  # BERT-base FFN up, sequence 128
    "bert_ffn2": ("right", 768, 3072, 128),  # BERT-base FFN down
    "mlp": ("right", 1024, 1024, 32),  # MLP layer, batch 32
    "mlp_b8": ("right", 1024, 1024, 8),  # the same, batch 8
    "gemv": ("right", 3072, 768, 1),  # batch-1 decode: M = 1
}
DEFAULT_SHAPES = ["conv3x3", "conv1x1", "bert_ffn1", "mlp", "gemv"]
DENSITIES = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]


def _testing():
    from sliver import _C

    return _C.testing


def cpu_name() -> str:
    """The model name from /proc/cpuinfo (recorded next to every figure)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def pruned_weight(
    rng: np.random.Generator, out: int, inp: int, density: float, pattern: str, int8: bool
) -> np.ndarray:
    """[out, in] weights with `density` of them nonzero in the given pattern."""
    if pattern in ("4x1", "8x1"):
        r = int(pattern[0])
        mask = np.repeat(rng.random(((out + r - 1) // r, inp)) < density, r, axis=0)[:out]
    elif pattern == "1x4":
        mask = np.repeat(rng.random((out, (inp + 3) // 4)) < density, 4, axis=1)[:, :inp]
    else:
        mask = rng.random((out, inp)) < density
    if int8:
        w = rng.integers(-127, 128, (out, inp)).astype(np.int8)
        w[w == 0] = 1
        return np.where(mask, w, 0).astype(np.int8)
    w = rng.standard_normal((out, inp)).astype(np.float32)
    return np.where(mask, w, 0).astype(np.float32)


def make_problem(
    shape: str, dtype: str, density: float | None, pattern: str, threads: int, seed: int = 0
):
    """The timed problem for one row: density None is the dense kernel."""
    t = _testing()
    layout, out, inp, cols = SHAPES[shape]
    rng = np.random.default_rng(seed)
    int8 = dtype == "q8"
    w = pruned_weight(rng, out, inp, 1.0 if density is None else density, pattern, int8)
    wl = w if layout == "left" else np.ascontiguousarray(w.T)
    xs = (inp, cols) if layout == "left" else (cols, inp)
    if int8:
        x = rng.integers(0, 256, xs).astype(np.uint8)
        cls = t.SparseQ8Problem
    else:
        x = rng.standard_normal(xs).astype(np.float32)
        cls = t.SparseF32Problem
    return cls(wl, x, layout=layout, sparse=density is not None, num_threads=threads)


def measure(
    shape: str, dtype: str, densities: list[float], pattern: str, threads: int, reps: int
) -> tuple[float, list[tuple[float, float, str]]]:
    """Dense GFLOPS and, per density, (sparse effective GFLOPS, speedup, packed layout)."""
    dense = make_problem(shape, dtype, None, pattern, threads)
    cpu = threads == 1
    sparse = [make_problem(shape, dtype, d, pattern, threads) for d in densities]
    best_d = min(dense.best_seconds(1, 0.05, cpu) for _ in range(reps))
    rows = []
    for s in sparse:
        best_s = 1e30
        for _ in range(reps):  # alternate so a busy spell hurts both
            best_s = min(best_s, s.best_seconds(1, 0.05, cpu))
            best_d = min(best_d, dense.best_seconds(1, 0.02, cpu))
        pk = s.packed
        layout = f"{pk.block}x1" + {2: "c2", 4: "q4", 8: "c4"}.get(getattr(pk, "kr", 1), "")
        rows.append((s.dense_macs * 2 / best_s / 1e9, best_s, layout))
    dense_gflops = dense.dense_macs * 2 / best_d / 1e9
    return dense_gflops, [(g, dense_gflops and g / dense_gflops, b) for g, _, b in rows]


def crossover(densities: list[float], speedups: list[float]) -> float | None:
    """Density where the speedup crosses 1 (linear in log speedup), or None if it does not."""
    pts = sorted(zip(densities, speedups, strict=True))
    for (d0, s0), (d1, s1) in zip(pts[:-1], pts[1:], strict=True):
        if s0 >= 1 > s1:
            l0, l1 = np.log(s0), np.log(s1)
            return d0 + (d1 - d0) * l0 / (l0 - l1)
    if pts and pts[-1][1] >= 1:
        return pts[-1][0]  # still faster at the densest point measured
    return None


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dtype", nargs="+", default=["f32", "q8"], choices=["f32", "q8"])
    ap.add_argument("--shape", nargs="+", default=DEFAULT_SHAPES, choices=sorted(SHAPES))
    ap.add_argument(
        "--pattern",
        nargs="+",
        default=["unstructured", "4x1"],
        choices=["unstructured", "4x1", "8x1", "1x4"],
    )
    ap.add_argument("--density", nargs="+", type=float, default=[0.05, 0.1, 0.2, 0.5])
    ap.add_argument("--crossover", action="store_true", help="densities 0.05..0.6 and crossovers")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    densities = DENSITIES if args.crossover else args.density
    print(f"CPU: {cpu_name()}, threads {args.threads}, best of {args.reps}")
    print(
        f"{'shape':10s} {'dtype':5s} {'pattern':12s} {'zeros':>6s} {'layout':>6s} "
        f"{'dense':>8s} {'sparse':>8s} {'speedup':>8s}"
    )
    for dtype in args.dtype:
        for shape in args.shape:
            for pattern in args.pattern:
                dense, rows = measure(shape, dtype, densities, pattern, args.threads, args.reps)
                for d, (g, s, b) in zip(densities, rows, strict=True):
                    print(
                        f"{shape:10s} {dtype:5s} {pattern:12s} {1 - d:6.0%} {b:>6s} "
                        f"{dense:8.1f} {g:8.1f} {s:7.2f}x",
                        flush=True,
                    )
                if args.crossover:
                    c = crossover(densities, [s for _, s, _ in rows])
                    text = f"{c:.2f}" if c is not None else "below 0.05"
                    print(f"{shape:10s} {dtype:5s} {pattern:12s} crossover density {text}")


@pytest.mark.parametrize("dtype", ["f32", "q8"])
@pytest.mark.parametrize("shape", DEFAULT_SHAPES)
@pytest.mark.parametrize("density", [0.1, 0.2])
def test_sparse_speed(benchmark, dtype: str, shape: str, density: float) -> None:
    """pytest-benchmark figure: the sparse product; the dense ratio goes in extra_info."""
    if not hasattr(_testing(), "SparseF32Problem"):
        pytest.skip("sparse testing hooks not built in")
    dense, rows = measure(shape, dtype, [density], "unstructured", 1, 3)
    g, s, b = rows[0]
    benchmark.extra_info.update(
        cpu=cpu_name(), dense_gflops=dense, sparse_gflops=g, speedup=s, block=b
    )
    print(
        f"\n{shape} {dtype} zeros {1 - density:.0%}: dense {dense:.1f} sparse {g:.1f} "
        f"effective G(FL)OPS, {s:.2f}x"
    )
    p = make_problem(shape, dtype, density, "unstructured", 1)
    benchmark.pedantic(p.run, rounds=5, iterations=1, warmup_rounds=1)


if __name__ == "__main__":
    main()
