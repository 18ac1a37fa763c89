"""Exceptions raised by sliver.

They mirror onnxruntime's failure kinds so code that catches broad errors keeps
working: every sliver exception is a ``SliverError`` (a ``RuntimeError``), and the
argument/graph ones are also ``ValueError``.
"""

from __future__ import annotations


class SliverError(RuntimeError):
    """Base class of every error sliver raises on purpose."""


class InvalidArgument(SliverError, ValueError):
    """A feed, output name or option does not fit the model."""


class InvalidGraph(SliverError, ValueError):
    """The model is malformed (bad node, attribute, reference or external data)."""


class NotImplementedOp(SliverError, NotImplementedError):
    """The model uses an op, domain or opset sliver has no implementation for."""


class RuntimeFailure(SliverError):
    """A kernel failed while running (names the node, op and input shapes)."""
