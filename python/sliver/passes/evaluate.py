"""Runs one node on constant inputs with sliver itself (native kernel, else Python fallback).

Folding with the same kernels the session would run keeps a folded model's
numbers identical to the unfolded one's.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..ir import Graph, Node, Value


def evaluate_node(
    graph: Graph, node: Node, inputs: dict[str, np.ndarray]
) -> list[np.ndarray] | None:
    """The node's outputs computed from ``inputs`` (name -> array), or None when it fails.

    ``inputs`` must cover every non-empty input name of the node. Non-tensor results
    (sequences, optionals, None) give None: only tensors become initializers.
    """
    from ..plan import compile_graph  # plan imports the ops registry; keep passes import-light

    outs = [o for o in node.outputs if o]
    mini = Graph(
        name=f"fold_{node.name}",
        nodes=[node],
        inputs=[],
        outputs=[graph.value(o) if o in graph.values else Value(o) for o in outs],
        initializers={i: inputs[i] for i in node.inputs if i},
        values=graph.values,
        opsets=graph.opsets,
        ir_version=graph.ir_version,
    )
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            plan = compile_graph(mini)
            res = plan.native.run([], list(range(len(outs))))
    except Exception:  # the session will report the failure, with context, at run time
        return None
    if not all(isinstance(r, np.ndarray) for r in res):
        return None
    return list(res)
