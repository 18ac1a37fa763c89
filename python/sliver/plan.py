"""IR -> executable plan: a slot per value, a kernel per node, a flat step list.

Slots of values no later step reads are released right after their last
reader, so peak memory follows liveness rather than graph size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _C
from .ir import Graph
from .ops import build_kernel


@dataclass
class CompiledPlan:
    """A native plan plus the bookkeeping the session needs around it."""

    native: object
    input_names: list[str]
    output_names: list[str]
    step_names: list[str] = field(default_factory=list)
    step_ops: list[str] = field(default_factory=list)
    step_impls: list[str] = field(default_factory=list)


def compile_graph(graph: Graph, allow_native: bool = True) -> CompiledPlan:
    """Builds kernels and the native step list for ``graph``."""
    slots: dict[str, int] = {}

    def slot(name: str) -> int:
        if name not in slots:
            slots[name] = len(slots)
        return slots[name]

    overridable = getattr(graph, "overridable", [])
    input_names = [v.name for v in graph.inputs] + [v.name for v in overridable]
    for n in input_names:
        slot(n)
    output_names = [v.name for v in graph.outputs]
    fed = set(input_names)

    last_use: dict[str, int] = {}
    for idx, node in enumerate(graph.nodes):
        for i in list(node.inputs) + node.implicit_inputs:
            if i:
                last_use[i] = idx
    keep = set(output_names)

    steps = []
    compiled = CompiledPlan(None, input_names, output_names)
    for idx, node in enumerate(graph.nodes):
        kernel, impl = build_kernel(node, graph, allow_native)
        ins = [slot(i) if i else -1 for i in list(node.inputs) + node.implicit_inputs]
        outs = [slot(o) if o else -1 for o in node.outputs]
        release = sorted(
            {
                slots[i]
                for i in list(node.inputs) + node.implicit_inputs
                if i and last_use.get(i) == idx and i not in keep
            }
        )
        steps.append((node.name, node.op_type, ins, outs, kernel, release))
        compiled.step_names.append(node.name)
        compiled.step_ops.append(node.key)
        compiled.step_impls.append(impl)
    for o in output_names:
        slot(o)

    plan = _C.Plan(len(slots))
    for name, arr in graph.initializers.items():
        if name in slots and name not in fed:
            plan.bind_constant(slots[name], arr if arr.dtype != object else arr)
    for s in steps:
        plan.add_step(*s)
    plan.set_inputs([slots[n] for n in input_names])
    plan.set_outputs([slots[n] for n in output_names])
    compiled.native = plan
    return compiled


def default_feeds(graph: Graph) -> dict[str, np.ndarray]:
    """Values for overridable initializers (inputs that also have an initializer)."""
    return {v.name: graph.initializers[v.name] for v in getattr(graph, "overridable", [])}
