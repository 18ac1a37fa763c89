"""The README's model table: sliver vs onnxruntime on the zoo and the onnx wheel's light models.

    python benchmarks/model_table.py [--threads 1 2] [--repeat 30] [--rounds N] [--only SUBSTR ...]
                                     [--light] [--full-size] [--ort-no-spin] [--zoo DIR]

Each model runs on both engines in one process, interleaved call by call (median wall time per
call); rows are markdown, followed by the geometric mean of ort/sliver per group (FP32 dense,
QDQ, QOperator, dynamic, pruned 50/80/90% and 1x4 blocks). > 1 means sliver is faster.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
from collections import defaultdict

from model_timing import compare, light_models
from sliver.tools import model_zoo


def group_of(name: str) -> str:
    """The table group a zoo model belongs to."""
    spec = model_zoo.spec_of(name)
    prefix = (
        "fp32"
        if spec.scheme == "fp32"
        else {"qdq": "qdq", "qoperator": "qop"}.get(spec.scheme, "dyn")
    )
    if spec.sparsity:
        blocks = " 1x4 blocks" if spec.block else ""
        return f"{prefix} pruned {int(round(spec.sparsity * 100))}%{blocks}"
    return f"{prefix} dense"


def cpu_name() -> str:
    """lscpu's model name."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Prints the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="time every model this many times, round-robin, and report the medians (a noisy "
        "minute on a shared machine then hits one round of each model, not all of one)",
    )
    ap.add_argument("--only", nargs="*", default=[], help="zoo names containing any of these")
    ap.add_argument("--light", action="store_true", help="also the onnx wheel's light models")
    ap.add_argument("--zoo", default="", help="folder of built zoo models (default: build now)")
    ap.add_argument(
        "--ort-no-spin",
        action="store_true",
        help="onnxruntime with session.intra_op.allow_spinning=0 (see model_timing.sessions)",
    )
    ap.add_argument(
        "--full-size",
        action="store_true",
        help="the deployment-sized families (ResNet-18, MobileNetV2, BERT-base layers) instead",
    )
    args = ap.parse_args(argv)

    registry = model_zoo.FULL_SIZE_REGISTRY if args.full_size else model_zoo.REGISTRY
    names = [
        n
        for n in registry
        if not n.endswith("_op13") and (not args.only or any(s in n for s in args.only))
    ]
    zoo = args.zoo or tempfile.mkdtemp(prefix="sliver-zoo-")
    paths = {n: p for n, p in ((n, os.path.join(zoo, f"{n}.onnx")) for n in names)}
    missing = [n for n, p in paths.items() if not os.path.exists(p)]
    paths.update(model_zoo.build_all(zoo, missing))
    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical CPUs\n")
    print("| model | threads | sliver ms | onnxruntime ms | ort/sliver |")
    print("|---|---|---|---|---|")
    ratios: dict[tuple[str, int], list[float]] = defaultdict(list)
    cases = [(n, str(paths[n]), model_zoo.make_feeds(n, seed=0), group_of(n)) for n in names]
    if args.light:
        cases += [(f"light_{n}", p, None, "light (onnx zoo)") for n, p in light_models().items()]
    for threads in args.threads:
        runs: dict[str, list[dict]] = defaultdict(list)
        for _ in range(max(1, args.rounds)):
            for name, path, feeds, _group in cases:
                big = name.startswith("light_") or args.full_size
                repeat = args.repeat if not big else max(3, args.repeat // 6)
                runs[name].append(
                    compare(path, threads, repeat, feeds, ort_spinning=not args.ort_no_spin)
                )
        for name, _path, _feeds, group in cases:
            med = {k: statistics.median(r[k] for r in runs[name]) for k in runs[name][0]}
            ratios[(group, threads)].append(med["ratio"])
            print(
                f"| {name} | {threads} | {med['sliver_ms']:.3f} | {med['ort_ms']:.3f} "
                f"| {med['ratio']:.2f} |",
                flush=True,
            )
    print("\n| group | threads | models | geomean ort/sliver | min |")
    print("|---|---|---|---|---|")
    for (group, threads), rs in sorted(ratios.items()):
        geo = math.exp(sum(math.log(r) for r in rs) / len(rs))
        print(f"| {group} | {threads} | {len(rs)} | {geo:.2f} | {min(rs):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
