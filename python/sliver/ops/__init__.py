"""Operator implementations: native kernels (C++) first, then Python ones.

``build_kernel`` is the one place that decides how a node runs: a native
kernel when one accepts the node (dtype, attributes), else a Python
implementation (sliver's own in ``contrib.py``/``control_flow.py``, or onnx's
reference implementation for the long tail). The plan records which was
chosen, so ``sliver inspect`` and profiles show every Python node.
"""

# Importing these registers their Python ops in PYTHON_OPS: compat (ops onnx's reference
# lacks or gets wrong), contrib, contrib_attention and contrib_rnn (com.microsoft), control_flow
# (If/Loop/Scan/SequenceMap), fused and qfused (sliver's fused float and 8-bit ops).
from . import (  # noqa: F401
    compat,
    contrib,
    contrib_attention,
    contrib_rnn,
    control_flow,
    fused,
    qfused,
)
from .registry import build_kernel, python_impl_available

__all__ = ["build_kernel", "python_impl_available"]
