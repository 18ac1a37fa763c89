"""sliver as an ``onnx.backend`` backend.

``onnx.backend.test.BackendTest(sliver.backend, __name__)`` runs onnx's backend
test suite on sliver, and ``sliver.backend.run_model(model, inputs)`` runs a
model the way other onnx backends do. Like ``onnxruntime.backend``, the module
itself is the backend: ``prepare``, ``run_model``, ``run_node``,
``supports_device`` and ``is_compatible`` are module-level functions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep, Device, DeviceType, namedtupledict

from .errors import InvalidArgument
from .options import SessionOptions
from .session import InferenceSession


class SliverBackendRep(BackendRep):
    """A prepared model: an InferenceSession run with positional or named inputs."""

    def __init__(self, session: InferenceSession) -> None:
        self.session = session
        self._input_names = [i.name for i in session.get_inputs()]
        self._input_names += [i.name for i in session.get_overridable_initializers()]
        self._output_names = [o.name for o in session.get_outputs()]

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Runs the model; ``inputs`` is a dict by name, a list in input order, or one array."""
        if isinstance(inputs, dict):
            feeds = dict(inputs)
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            inputs = list(inputs)
            if len(inputs) > len(self._input_names):
                raise InvalidArgument(
                    f"got {len(inputs)} inputs, the model takes at most {len(self._input_names)}: "
                    f"{self._input_names}"
                )
            feeds = dict(zip(self._input_names, inputs, strict=False))
        outs = self.session.run(None, feeds)
        return namedtupledict("Outputs", self._output_names)(*outs)


def _session_options(kwargs: dict[str, Any]) -> SessionOptions:
    # onnxruntime.backend maps keyword arguments onto SessionOptions fields the same way.
    options = SessionOptions()
    for key, value in kwargs.items():
        if hasattr(options, key) and not key.startswith("_"):
            setattr(options, key, value)
    return options


class SliverBackend(Backend):
    """The backend class; its class methods are also exported as module functions."""

    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        """Whether sliver can run on ``device`` (ops are checked when the model is prepared)."""
        return cls.supports_device(device)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        """sliver runs on the CPU only."""
        try:
            return Device(device).type == DeviceType.CPU
        except (AttributeError, ValueError):
            return False

    @classmethod
    def prepare(
        cls,
        model: onnx.ModelProto | str | bytes | os.PathLike,
        device: str = "CPU",
        **kwargs: Any,
    ) -> SliverBackendRep:
        """Compiles ``model`` once; keyword arguments set SessionOptions fields of that name."""
        if not cls.supports_device(device):
            raise InvalidArgument(f"sliver runs on CPU only, not on device {device!r}")
        if isinstance(model, onnx.ModelProto):
            model = model.SerializeToString()
        return SliverBackendRep(InferenceSession(model, _session_options(kwargs)))

    @classmethod
    def run_model(
        cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any
    ) -> tuple[Any, ...]:
        """prepare() then run() once."""
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(
        cls,
        node: onnx.NodeProto,
        inputs: Any,
        device: str = "CPU",
        outputs_info: Sequence[tuple[np.dtype, tuple[int, ...]]] | None = None,
        **kwargs: Any,
    ) -> tuple[Any, ...]:
        """Runs one node on ``inputs`` (arrays, or lists of arrays for sequences).

        ``opset_version`` (keyword) picks the ONNX opset; the newest one otherwise.
        """
        opset = int(kwargs.pop("opset_version", onnx.defs.onnx_opset_version()))
        model = _node_model(node, list(inputs), opset, outputs_info)
        return cls.run_model(model, list(inputs), device, **kwargs)


def _value_info(name: str, value: Any) -> onnx.ValueInfoProto:
    if isinstance(value, list):
        elem = np.asarray(value[0]) if value else np.zeros(0, np.float32)
        return onnx.helper.make_tensor_sequence_value_info(
            name, onnx.helper.np_dtype_to_tensor_dtype(elem.dtype), None
        )
    arr = np.asarray(value)
    dtype = onnx.TensorProto.STRING if arr.dtype.kind in "OUS" else None
    if dtype is None:
        dtype = onnx.helper.np_dtype_to_tensor_dtype(arr.dtype)
    return onnx.helper.make_tensor_value_info(name, dtype, arr.shape)


def _domain_version(domain: str, op_type: str, onnx_opset: int) -> int:
    if domain in ("", "ai.onnx"):
        return onnx_opset
    try:
        return onnx.defs.get_schema(op_type, domain=domain).since_version
    except Exception:  # unknown to onnx: any version will do, the op decides
        return 1


def _node_model(
    node: onnx.NodeProto,
    inputs: list[Any],
    opset: int,
    outputs_info: Sequence[tuple[np.dtype, tuple[int, ...]]] | None,
) -> onnx.ModelProto:
    """A one-node model whose inputs are typed after ``inputs``."""
    names = [n for n in node.input if n]
    if len(names) != len(inputs):
        raise InvalidArgument(
            f"node {node.name!r} ({node.op_type}) has {len(names)} inputs, got {len(inputs)} values"
        )
    graph_inputs = [_value_info(n, v) for n, v in zip(names, inputs, strict=True)]
    graph_outputs = []
    for i, out in enumerate(o for o in node.output if o):
        if outputs_info is not None and i < len(outputs_info):
            dtype, shape = outputs_info[i]
            graph_outputs.append(
                onnx.helper.make_tensor_value_info(
                    out, onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), shape
                )
            )
        else:
            graph_outputs.append(onnx.helper.make_empty_tensor_value_info(out))
    graph = onnx.helper.make_graph([node], f"run_node_{node.op_type}", graph_inputs, graph_outputs)
    opsets = [onnx.helper.make_opsetid("", opset)]
    if node.domain not in ("", "ai.onnx"):
        opsets.append(
            onnx.helper.make_opsetid(node.domain, _domain_version(node.domain, node.op_type, opset))
        )
    return onnx.helper.make_model(graph, opset_imports=opsets)


is_compatible = SliverBackend.is_compatible
prepare = SliverBackend.prepare
run = SliverBackend.run_model
run_model = SliverBackend.run_model
run_node = SliverBackend.run_node
supports_device = SliverBackend.supports_device

__all__ = [
    "SliverBackend",
    "SliverBackendRep",
    "is_compatible",
    "prepare",
    "run",
    "run_model",
    "run_node",
    "supports_device",
]
