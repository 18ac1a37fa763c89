"""Latency of sliver and onnxruntime on the same file, same process, interleaved."""

from __future__ import annotations

import glob
import os
from typing import Any

import numpy as np
import onnx
import onnxruntime

import sliver
from sliver.cli import interleaved_latency, random_feeds


def light_models() -> dict[str, str]:
    """The onnx wheel's light model-zoo graphs, name -> path."""
    folder = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    return {os.path.basename(p)[len("light_") : -5]: p for p in sorted(glob.glob(f"{folder}/light_*.onnx"))}


def sessions(path: str, threads: int) -> tuple[Any, Any]:
    """(sliver session, onnxruntime session), both with ``threads`` intra-op threads."""
    so = sliver.SessionOptions()
    so.intra_op_num_threads = threads
    oo = onnxruntime.SessionOptions()
    oo.intra_op_num_threads = threads
    return (
        sliver.InferenceSession(path, so),
        onnxruntime.InferenceSession(path, oo, providers=["CPUExecutionProvider"]),
    )


def compare(path: str, threads: int, repeat: int, feeds: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """Median ms of each engine and the ratio onnxruntime/sliver (> 1: sliver faster)."""
    s, o = sessions(path, threads)
    feeds = feeds if feeds is not None else random_feeds(s, {})
    med = interleaved_latency({"sliver": lambda: s.run(None, feeds), "ort": lambda: o.run(None, feeds)}, repeat)
    return {"sliver_ms": med["sliver"] * 1e3, "ort_ms": med["ort"] * 1e3, "ratio": med["ort"] / med["sliver"]}
