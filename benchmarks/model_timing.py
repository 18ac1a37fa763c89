"""Latency of sliver and onnxruntime on the same file, same process, interleaved."""

from __future__ import annotations

import glob
import os
from typing import Any

# numpy's OpenBLAS workers spin after every BLAS call (the output comparisons make some) and
# would share the cores that both engines are timed on; neither engine uses them.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime  # noqa: E402
import sliver  # noqa: E402
from sliver.cli import interleaved_latency, random_feeds  # noqa: E402


def light_models() -> dict[str, str]:
    """The onnx wheel's light model-zoo graphs, name -> path."""
    folder = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    return {
        os.path.basename(p)[len("light_") : -5]: p
        for p in sorted(glob.glob(f"{folder}/light_*.onnx"))
    }


def sessions(path: str, threads: int, ort_spinning: bool = True) -> tuple[Any, Any]:
    """(sliver session, onnxruntime session), both with ``threads`` intra-op threads.

    onnxruntime's workers spin by default after each run (``session.intra_op.allow_spinning``),
    about 40 ms on the Zen 3 VM of the README; in an interleaved comparison the engine that
    runs next shares a core with that spinner. ``ort_spinning=False`` turns it off, so that
    each engine finds the machine as idle as the other does."""
    so = sliver.SessionOptions()
    so.intra_op_num_threads = threads
    oo = onnxruntime.SessionOptions()
    oo.intra_op_num_threads = threads
    if not ort_spinning:
        oo.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return (
        sliver.InferenceSession(path, so),
        onnxruntime.InferenceSession(path, oo, providers=["CPUExecutionProvider"]),
    )


def compare(
    path: str,
    threads: int,
    repeat: int,
    feeds: dict[str, np.ndarray] | None = None,
    ort_spinning: bool = True,
) -> dict[str, float]:
    """Median ms of each engine and the ratio onnxruntime/sliver (> 1: sliver faster)."""
    s, o = sessions(path, threads, ort_spinning)
    feeds = feeds if feeds is not None else random_feeds(s, {})
    med = interleaved_latency(
        {"sliver": lambda: s.run(None, feeds), "ort": lambda: o.run(None, feeds)}, repeat
    )
    return {
        "sliver_ms": med["sliver"] * 1e3,
        "ort_ms": med["ort"] * 1e3,
        "ratio": med["ort"] / med["sliver"],
    }
