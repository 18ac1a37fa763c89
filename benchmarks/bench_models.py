"""Per-model latency, sliver vs onnxruntime, interleaved, at 1 and 2 threads.

    python -m pytest benchmarks/bench_models.py --benchmark-only -s

Each case prints `model threads sliver_ms ort_ms ratio(ort/sliver)` and stores them in the
benchmark's extra_info; the pytest-benchmark figure itself is sliver's latency.
"""

from __future__ import annotations

import pytest
from model_timing import compare, light_models, sessions
from sliver.cli import random_feeds
from sliver.tools import model_zoo

ZOO = [
    n for n, s in model_zoo.REGISTRY.items() if not n.endswith("_op13") and s.sparsity in (0.0, 0.8)
]
REPEAT = 20


def _bench(benchmark, path: str, label: str, threads: int, cpu: str, feeds=None) -> None:
    r = compare(path, threads, REPEAT, feeds)
    benchmark.extra_info.update(r, cpu=cpu, threads=threads)
    print(
        f"\n{label:34s} t={threads} sliver {r['sliver_ms']:9.3f} ms  "
        f"ort {r['ort_ms']:9.3f} ms  ort/sliver {r['ratio']:.2f}x"
    )
    s, _ = sessions(path, threads)
    feeds = feeds if feeds is not None else random_feeds(s, {})
    benchmark.pedantic(lambda: s.run(None, feeds), rounds=5, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", ZOO)
def test_zoo_model(benchmark, zoo_model, cpu_model_name, name: str, threads: int) -> None:
    _bench(
        benchmark,
        zoo_model(name),
        name,
        threads,
        cpu_model_name,
        model_zoo.make_feeds(name, seed=0),
    )


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", sorted(light_models()))
def test_light_model(benchmark, cpu_model_name, name: str, threads: int) -> None:
    _bench(benchmark, light_models()[name], f"light_{name}", threads, cpu_model_name)
