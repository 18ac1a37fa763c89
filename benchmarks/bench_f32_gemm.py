"""FP32 GEMM throughput next to numpy's sgemm (OpenBLAS), same shapes, same process.

    python -m pytest benchmarks/bench_f32_gemm.py --benchmark-only -s     # pytest-benchmark
    python benchmarks/bench_f32_gemm.py [--threads 1 2] [--reps 7]       # plain table

GFLOPS = 2*M*N*K / seconds. Runs are interleaved (sliver, numpy, sliver, ...) and the best of
`reps` is kept for each, so a busy machine hurts both alike; numpy's OpenBLAS is set to the same
thread count. One thread is timed by the calling thread's CPU time (both libraries then run on
it), which other processes taking the core cannot inflate; two threads by the wall clock.
Operands are laid out as the runtime uses them: the constant one (the weights) is packed once,
outside the timing ("wB" = weights are B, as in MatMul/Gemm; "wA" = weights are A, as in Conv:
M = output channels, N = output pixels, K = Cin*kh*kw); "raw" packs nothing ahead.
"%peak" is against the FMA peak per core (shared/peak: `run.sh compute`), set with
SLIVER_F32_PEAK_GFLOPS (default 102, measured on the Zen 3 dev machine) times the threads.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import time

import numpy as np
import pytest

PEAK_PER_CORE = float(os.environ.get("SLIVER_F32_PEAK_GFLOPS", "102"))

# (label, M, N, K, which operand is constant: "A", "B" or "")
SHAPES = [
    ("square 1024 raw", 1024, 1024, 1024, ""),
    ("square 1024 wB", 1024, 1024, 1024, "B"),
    ("bert qkv s128 wB", 128, 2304, 768, "B"),
    ("bert ffn1 s128 wB", 128, 3072, 768, "B"),
    ("bert ffn2 s128 wB", 128, 768, 3072, "B"),
    ("decode m16 wB", 16, 3072, 768, "B"),
    ("llm decode gemv wB", 1, 4096, 4096, "B"),
    ("gemv raw", 1, 4096, 1024, ""),
    ("r50 conv3x3 56x56x64 wA", 64, 3136, 576, "A"),
    ("r50 conv1x1 56x56 256->64 wA", 64, 3136, 256, "A"),
    ("r50 conv3x3 28x28x128 wA", 128, 784, 1152, "A"),
    ("r50 conv1x1 14x14 1024->256 wA", 256, 196, 1024, "A"),
    ("r50 conv3x3 7x7x512 wA", 512, 49, 4608, "A"),
    ("mbv2 pw 112x112 32->64 wA", 64, 12544, 32, "A"),
]


def _testing():
    from sliver import _C

    return _C.testing


def set_numpy_threads(n: int) -> bool:
    """Sets numpy's OpenBLAS thread count through its C API; False if not found."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "openblas" in line}
    except OSError:
        return False
    for path in libs:
        lib = ctypes.CDLL(path)
        for sym in (
            "scipy_openblas_set_num_threads64_",
            "openblas_set_num_threads64_",
            "openblas_set_num_threads",
        ):
            if hasattr(lib, sym):
                getattr(lib, sym)(ctypes.c_int(n))
                return True
    return False


def compare(m: int, n: int, k: int, const: str, threads: int, reps: int = 7, seed: int = 0):
    """Best-of-reps GFLOPS for sliver and numpy on one shape, interleaved."""
    T = _testing()
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k), np.float32)
    b = rng.standard_normal((k, n), np.float32)
    prob = T.SgemmProblem(a, b, pack_a=const == "A", pack_b=const == "B", num_threads=threads)
    out = np.empty((m, n), np.float32)
    numpy_threads_set = set_numpy_threads(threads)
    runs = {"sliver": prob.run, "numpy": lambda: np.matmul(a, b, out=out)}
    clock = time.thread_time if threads == 1 else time.perf_counter
    for fn in runs.values():
        fn()
    t0 = clock()
    prob.run()
    inner = max(1, int(0.02 / max(clock() - t0, 1e-6)))
    best = {name: float("inf") for name in runs}
    for _ in range(reps):
        for name, fn in runs.items():
            t = clock()
            for _ in range(inner):
                fn()
            best[name] = min(best[name], (clock() - t) / inner)
    flops = 2.0 * m * n * k
    res = {"threads": threads, "M": m, "N": n, "K": k, "numpy_threads_set": numpy_threads_set}
    for name, sec in best.items():
        res[f"{name}_gflops"] = flops / sec * 1e-9
        res[f"{name}_pct_peak"] = 100 * flops / sec * 1e-9 / (PEAK_PER_CORE * threads)
    res["ratio"] = res["sliver_gflops"] / res["numpy_gflops"]
    return res


def format_row(label: str, r: dict) -> str:
    cells = [f"{label:32s} t={r['threads']}"]
    for name in ("sliver", "numpy"):
        cells.append(f"{name} {r[name + '_gflops']:6.1f} GFLOPS ({r[name + '_pct_peak']:5.1f}%)")
    cells.append(f"sliver/numpy {r['ratio']:.2f}")
    return "  ".join(cells)


def ukernel_rows(kc: int = 256) -> list[str]:
    """Each usable micro-kernel alone on L1-resident panels (thread CPU time, best of 5)."""
    T = _testing()
    rows = []
    for k in T.f32_gemm_kernels():
        if k["usable"]:
            g = T.ukernel_gflops(k["name"], kc=kc)
            rows.append(
                f"{k['name']:32s} kc={kc}  {g:6.1f} GFLOPS ({100 * g / PEAK_PER_CORE:5.1f}%)"
            )
    return rows


def test_f32_ukernels(benchmark):
    pytest.importorskip("sliver._C")
    print("\n" + "\n".join(ukernel_rows()))
    T = _testing()
    name = T.f32_gemm_kernels()[0]["name"]
    benchmark.pedantic(lambda: T.ukernel_gflops(name, kc=256, calls=2000, repeats=1), rounds=5)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("label,m,n,k,const", SHAPES, ids=[s[0] for s in SHAPES])
def test_f32_gemm_vs_numpy(benchmark, label, m, n, k, const, threads):
    pytest.importorskip("sliver._C")
    r = compare(m, n, k, const, threads)
    benchmark.extra_info.update(r)
    print("\n" + format_row(label, r))
    T = _testing()
    rng = np.random.default_rng(1)
    prob = T.SgemmProblem(
        rng.standard_normal((m, k), np.float32),
        rng.standard_normal((k, n), np.float32),
        pack_a=const == "A",
        pack_b=const == "B",
        num_threads=threads,
    )
    benchmark.pedantic(prob.run, rounds=5, iterations=1, warmup_rounds=1)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--only", default="", help="substring of the shape label")
    args = ap.parse_args()
    for row in ukernel_rows():
        print(row, flush=True)
    for label, m, n, k, const in SHAPES:
        if args.only not in label:
            continue
        for t in args.threads:
            print(format_row(label, compare(m, n, k, const, t, args.reps)), flush=True)


if __name__ == "__main__":
    main()
