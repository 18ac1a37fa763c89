"""sliver's graph IR: plain Python objects, no protobuf past the importer.

A ``Graph`` holds ``Node`` objects in topological order, the ``Value`` records
(name, dtype, static shape) known for the names they use, and constant tensors
as numpy arrays. Passes rewrite it; ``plan.py`` compiles it to a step list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnx.numpy_helper

Dim = int | str | None


@dataclass
class Value:
    """A named tensor: ONNX dtype code (0 when unknown) and shape (None when rank unknown)."""

    name: str
    dtype: int = 0
    shape: tuple[Dim, ...] | None = None
    kind: str = "tensor"  # "tensor", "sequence", "optional", "map" (non-tensors run in fallback)


@dataclass
class Node:
    """One operator application. ``attrs`` holds decoded values; graphs stay GraphProto."""

    op_type: str
    domain: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    opset: int = 0
    # Outer-scope names read by subgraphs; appended as extra step inputs.
    implicit_inputs: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.op_type if self.domain in ("", "ai.onnx") else f"{self.domain}:{self.op_type}"

    def to_proto(self) -> onnx.NodeProto:
        """Rebuilds a NodeProto (used by the reference fallback and when saving)."""
        attrs = {k: _attr_to_proto_value(v) for k, v in self.attrs.items()}
        return onnx.helper.make_node(
            self.op_type,
            self.inputs,
            self.outputs,
            name=self.name,
            domain=self.domain or None,
            **attrs,
        )


def _attr_to_proto_value(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return onnx.numpy_helper.from_array(v)
    if isinstance(v, list) and v and isinstance(v[0], np.ndarray):
        return [onnx.numpy_helper.from_array(t) for t in v]
    return v


@dataclass
class Graph:
    """A model's main graph (or a subgraph) in sliver's IR."""

    name: str
    nodes: list[Node]
    inputs: list[Value]
    outputs: list[Value]
    initializers: dict[str, np.ndarray]
    values: dict[str, Value]
    opsets: dict[str, int]
    # Model-level facts kept for get_modelmeta() and for saving.
    ir_version: int = 8
    producer_name: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    def value(self, name: str) -> Value:
        """The Value record for ``name`` (an empty one if nothing is known)."""
        return self.values.get(name) or Value(name)

    def producers(self) -> dict[str, Node]:
        """Maps each value name to the node that produces it."""
        return {o: n for n in self.nodes for o in n.outputs if o}

    def consumers(self) -> dict[str, list[Node]]:
        """Maps each value name to the nodes that read it (implicit reads included)."""
        out: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in list(n.inputs) + n.implicit_inputs:
                if i:
                    out.setdefault(i, []).append(n)
        return out
