"""What onnxruntime's spinning workers do to the engine that runs right after it.

    python benchmarks/spin_interference.py MODEL.onnx [--threads 2] [--repeat 8] [--sleep-ms 50]

Prints median milliseconds of: sliver alone; sliver right after an onnxruntime run; sliver
after an onnxruntime run and a sleep; onnxruntime alone; and the same interleaved pair with
onnxruntime's ``session.intra_op.allow_spinning`` off. Inputs are random (``sliver.cli``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

from model_timing import sessions
from sliver.cli import random_feeds


def _ms(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1e3


def _median(xs: list[float]) -> float:
    return round(statistics.median(xs), 2)


def measure(model: str, threads: int, repeat: int, sleep_ms: float, spinning: bool) -> None:
    """Prints the timings for one setting of onnxruntime's spinning."""
    s, o = sessions(model, threads, ort_spinning=spinning)
    feeds = random_feeds(s, {})

    def run_s() -> object:
        return s.run(None, feeds)

    def run_o() -> object:
        return o.run(None, feeds)

    run_s(), run_o()
    if spinning:
        alone = [_ms(run_s) for _ in range(repeat)]
        ort_alone = [_ms(run_o) for _ in range(repeat)]
        slept = []
        for _ in range(repeat):
            run_o()
            time.sleep(sleep_ms / 1e3)
            slept.append(_ms(run_s))
        print(
            f"threads {threads}: sliver alone {_median(alone)} ms, "
            f"onnxruntime alone {_median(ort_alone)} ms, "
            f"sliver after onnxruntime + {sleep_ms:g} ms sleep {_median(slept)} ms"
        )
    pairs = [(_ms(run_s), _ms(run_o)) for _ in range(repeat)]
    label = "spinning" if spinning else "not spinning"
    print(
        f"interleaved, onnxruntime {label}: sliver {_median([a for a, _ in pairs])} ms, "
        f"onnxruntime {_median([b for _, b in pairs])} ms"
    )


def main(argv: list[str] | None = None) -> int:
    """Prints the five timings."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=8)
    ap.add_argument("--sleep-ms", type=float, default=50.0)
    args = ap.parse_args(argv)
    for spinning in (True, False):
        measure(args.model, args.threads, args.repeat, args.sleep_ms, spinning)
    return 0


if __name__ == "__main__":
    sys.exit(main())
