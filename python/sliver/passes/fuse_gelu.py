"""fuse_gelu: ``x*0.5*(1+erf(x/sqrt2))`` -> one ``com.microsoft:Gelu(x)``.

Runs after fuse_epilogue, which folds the GELU into a preceding Conv/Gemm/MatMul where it can;
this catches the rest (after a quantized MatMul, a LayerNormalization, a Python-run op ...), so
one vectorised pass over x replaces five elementwise ops and their four intermediates. The
contrib-domain op keeps the saved graph valid below opset 20, where ONNX has no Gelu.
"""

from __future__ import annotations

from ..ir import Graph, Node
from .erf_gelu import match_erf_gelu
from .fusion import DTYPES
from .util import implicit_reads, output_names, single_consumer


def run(graph: Graph) -> bool:
    """Replaces every erf-GELU chain whose intermediates nothing else reads."""
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
    for erf in graph.nodes:
        if erf.op_type != "Erf" or erf.domain != "" or id(erf) in gone:
            continue
        scale = producers.get(erf.inputs[0])  # x/sqrt2 or x*(1/sqrt2)
        if scale is None or scale.op_type not in ("Div", "Mul"):
            continue
        for x in dict.fromkeys(scale.inputs):
            if graph.value(x).dtype not in DTYPES:
                continue
            chain = match_erf_gelu(graph, x, consumers.get(x, []), take)
            if chain is None or erf not in chain or any(id(n) in gone for n in chain):
                continue
            last = chain[-1]
            place[id(last)] = Node(
                "Gelu", "com.microsoft", f"{last.name}_gelu", [x], [last.outputs[0]], opset=1
            )
            gone.update(id(n) for n in chain)
            claimed.update(id(n) for n in chain)
            break
    if not place:
        return False
    graph.nodes = [place.get(id(n), n) for n in graph.nodes if id(n) not in gone or id(n) in place]
    return True
