"""Operator implementations: native kernels (C++) first, then Python ones.

``build_kernel`` is the one place that decides how a node runs: a native
kernel when one accepts the node (dtype, attributes), else a Python
implementation (sliver's own in ``contrib.py``/``control_flow.py``, or onnx's
reference implementation for the long tail). The plan records which was
chosen, so ``sliver inspect`` and profiles show every Python node.
"""

from . import compat, control_flow  # noqa: F401  (they register PYTHON_OPS)
from . import contrib  # noqa: F401  (registers the com.microsoft Python ops)
from . import fused  # noqa: F401  (registers sliver's fused ops: FusedConv/Gemm/MatMul)
from . import qfused  # noqa: F401  (registers sliver's 8-bit fused ops: QLinearConv/MatMul/Lookup)
from .registry import build_kernel, python_impl_available

__all__ = ["build_kernel", "python_impl_available"]
