"""sliver: a compiled CPU inference runtime for quantized and pruned ONNX models.

Drop-in for onnxruntime: ``import sliver as ort`` then ``ort.InferenceSession(path)``.
"""

from __future__ import annotations

from . import _C
from .errors import InvalidArgument, InvalidGraph, NotImplementedOp, RuntimeFailure, SliverError
from .options import ExecutionMode, GraphOptimizationLevel, RunOptions, SessionOptions
from .session import InferenceSession, ModelMetadata, NodeArg

__version__ = "0.1.0"


def get_available_providers() -> list[str]:
    """Providers sliver answers to (its CPU kernels stand in for onnxruntime's CPU provider)."""
    return ["CPUExecutionProvider"]


def get_device() -> str:
    """The device sliver runs on."""
    return "CPU"


def cpu_info() -> dict:
    """What CPU dispatch found (ISA features) and the micro-kernels it selected."""
    return dict(_C.cpu_info())


__all__ = [
    "InferenceSession",
    "SessionOptions",
    "RunOptions",
    "GraphOptimizationLevel",
    "ExecutionMode",
    "NodeArg",
    "ModelMetadata",
    "SliverError",
    "InvalidArgument",
    "InvalidGraph",
    "NotImplementedOp",
    "RuntimeFailure",
    "cpu_info",
    "get_available_providers",
    "get_device",
]
