"""fuse_gelu: ``x*0.5*(1+erf(x/sqrt2))`` -> one ``com.microsoft:Gelu(x)``, and the tanh form
``x*0.5*(1+tanh(sqrt(2/pi)*(x+0.044715*x^3)))`` -> one ``com.microsoft:FastGelu(x)``.

Runs after fuse_epilogue, which folds the GELU into a preceding Conv/Gemm/MatMul where it can;
this catches the rest (after a quantized MatMul, a LayerNormalization, a Python-run op ...), so
one vectorised pass over x replaces five elementwise ops and their four intermediates. The
contrib-domain op keeps the saved graph valid below opset 20, where ONNX has no Gelu.
"""

from __future__ import annotations

from ..ir import Graph, Node
from .fusion import DTYPES
from .gelu_patterns import match_erf_gelu, match_tanh_gelu
from .util import implicit_reads, output_names, single_consumer


def run(graph: Graph) -> bool:
    """Replaces every GELU chain (erf or tanh form) whose intermediates nothing else reads."""
    consumers = graph.consumers()
    producers = graph.producers()
    outs = output_names(graph) | implicit_reads(graph)
    claimed: set[int] = set()

    def take(name: str) -> Node | None:
        node = single_consumer(consumers, name)
        if node is None or node.domain != "" or id(node) in claimed or name in outs:
            return None
        return node

    place: dict[int, Node] = {}  # id(last node of a chain) -> its Gelu
    gone: set[int] = set()
    for core in graph.nodes:
        if core.domain != "" or id(core) in gone:
            continue
        if core.op_type == "Erf":  # its input is x/sqrt2 or x*(1/sqrt2)
            scale = producers.get(core.inputs[0])
            if scale is None or scale.op_type not in ("Div", "Mul"):
                continue
            candidates, match, op = scale.inputs, match_erf_gelu, "Gelu"
        elif core.op_type == "Tanh":  # its input is sqrt(2/pi) * (x + 0.044715 x^3)
            arg = producers.get(core.inputs[0])
            adds = [producers.get(i) for i in arg.inputs] if arg and arg.op_type == "Mul" else []
            inner = next((a for a in adds if a is not None and a.op_type == "Add"), None)
            if inner is None:
                continue
            candidates, match, op = inner.inputs, match_tanh_gelu, "FastGelu"
        else:
            continue
        for x in dict.fromkeys(candidates):
            if graph.value(x).dtype not in DTYPES:
                continue
            chain = match(graph, x, consumers.get(x, []), take)
            if chain is None or all(n is not core for n in chain):
                continue
            if any(id(n) in gone for n in chain):
                continue
            last = chain[-1]
            place[id(last)] = Node(
                op, "com.microsoft", f"{last.name}_gelu", [x], [last.outputs[0]], opset=1
            )
            gone.update(id(n) for n in chain)
            claimed.update(id(n) for n in chain)
            break
    if not place:
        return False
    graph.nodes = [place.get(id(n), n) for n in graph.nodes if id(n) not in gone or id(n) in place]
    return True
