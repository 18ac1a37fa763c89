"""InferenceSession: the onnxruntime-compatible front door."""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx

from . import _C
from .errors import InvalidArgument, InvalidGraph, RuntimeFailure, SliverError
from .ir import Graph, Value
from .onnx_import import import_model
from .options import GraphOptimizationLevel, RunOptions, SessionOptions
from .passes import run_pipeline
from .plan import CompiledPlan, compile_graph, default_feeds

_KNOWN_PROVIDERS = ("CPUExecutionProvider", "SliverExecutionProvider")

_TYPE_NAMES = {
    1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    8: "string", 9: "bool", 10: "float16", 11: "double", 12: "uint32", 13: "uint64",
    14: "complex64", 15: "complex128", 16: "bfloat16",
}  # fmt: skip


def _type_string(v: Value) -> str:
    if v.kind == "sequence":
        return "seq(tensor)"
    if v.kind == "optional":
        return "optional(tensor)"
    if v.kind == "map":
        return "map"
    return f"tensor({_TYPE_NAMES.get(v.dtype, 'undefined')})"


class NodeArg:
    """A model input or output as onnxruntime describes it."""

    def __init__(self, value: Value) -> None:
        self.name: str = value.name
        self.type: str = _type_string(value)
        self.shape: list[int | str | None] | None = (
            None if value.shape is None else [d for d in value.shape]
        )

    def __repr__(self) -> str:
        return f"NodeArg(name={self.name!r}, type={self.type!r}, shape={self.shape!r})"


class ModelMetadata:
    """What get_modelmeta() returns."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.producer_name: str = meta.get("producer_name", "")
        self.graph_name: str = meta.get("graph_name", "")
        self.domain: str = meta.get("domain", "")
        self.description: str = meta.get("description", "")
        self.graph_description: str = meta.get("graph_description", "")
        self.version: int = meta.get("version", 0)
        self.custom_metadata_map: dict[str, str] = meta.get("custom_metadata_map", {})


def _default_threads() -> int:
    """The cores this process may run on (onnxruntime's default for intra-op threads)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _provider_names(providers: Sequence[Any] | None) -> list[str]:
    names: list[str] = []
    for p in providers or []:
        name = p[0] if isinstance(p, (tuple, list)) else p
        if not isinstance(name, str):
            raise InvalidArgument(f"provider must be a string or (name, options) tuple, got {p!r}")
        if name not in _KNOWN_PROVIDERS:
            warnings.warn(
                f"sliver: provider {name!r} is not available; running on sliver's CPU kernels",
                stacklevel=3,
            )
        names.append(name)
    return names


class InferenceSession:
    """Loads an ONNX model, compiles it once, and runs it.

    Args:
        path_or_bytes: a path to an .onnx file, the model's bytes, or a ModelProto.
        sess_options: a SessionOptions (threads, optimization level, profiling, ...).
        providers: accepted for onnxruntime compatibility; sliver always runs on its CPU kernels.
    """

    def __init__(
        self,
        path_or_bytes: str | bytes | os.PathLike | onnx.ModelProto,
        sess_options: SessionOptions | None = None,
        providers: Sequence[Any] | None = None,
        provider_options: Sequence[dict] | None = None,
        **kwargs: Any,
    ) -> None:
        self._options = sess_options if sess_options is not None else SessionOptions()
        _provider_names(providers)
        self._model_path = path_or_bytes if isinstance(path_or_bytes, (str, os.PathLike)) else None
        graph = import_model(path_or_bytes)
        self._meta = getattr(graph, "model_meta", {})
        self._inputs = [NodeArg(v) for v in graph.inputs]
        self._overridable = [NodeArg(v) for v in getattr(graph, "overridable", [])]
        self._outputs = [NodeArg(v) for v in graph.outputs]
        self._input_values = {v.name: v for v in graph.inputs}
        for name, value in self._options._initializers.items():
            if name not in graph.initializers:
                raise InvalidArgument(f"add_initializer: model has no initializer named {name!r}")
            graph.initializers[name] = np.asarray(value)
        level = GraphOptimizationLevel(int(self._options.graph_optimization_level))
        graph.optimization_level = level  # type: ignore[attr-defined]  (read by subgraph bodies)
        graph = run_pipeline(graph, level)
        if self._options.optimized_model_filepath:
            from .onnx_export import save_graph

            save_graph(graph, self._options.optimized_model_filepath)
        self._graph = graph
        self._defaults = default_feeds(graph)
        # "sliver.native_kernels" = "0" runs every node on its Python reference implementation:
        # the spec oracle the tests compare the native kernels with.
        native = self._options._config.get("sliver.native_kernels", "1") != "0"
        graph.session_config = dict(self._options._config)  # kernels' KernelInit::config
        self._plan: CompiledPlan = compile_graph(graph, allow_native=native)
        # Like onnxruntime's memory pattern: intermediates live in one arena planned from the
        # first run's allocations (csrc/include/sliver/memory_plan.h).
        self._plan.native.set_memory_planning(
            bool(self._options.enable_mem_pattern and self._options.enable_cpu_mem_arena)
        )
        threads = int(self._options.intra_op_num_threads or 0)
        self._pool = _C.ThreadPool(threads if threads > 0 else _default_threads())
        self._output_index = {n: i for i, n in enumerate(self._plan.output_names)}
        self._profile: list[dict[str, Any]] | None = [] if self._options.enable_profiling else None
        self._profile_start = time.perf_counter()

    # -- description ---------------------------------------------------------------------------
    def get_inputs(self) -> list[NodeArg]:
        """The model's inputs (initializers excluded)."""
        return list(self._inputs)

    def get_outputs(self) -> list[NodeArg]:
        """The model's outputs."""
        return list(self._outputs)

    def get_overridable_initializers(self) -> list[NodeArg]:
        """Initializers the caller may feed (listed as graph inputs too)."""
        return list(self._overridable)

    def get_modelmeta(self) -> ModelMetadata:
        """Producer, graph name, description, version and custom metadata."""
        return ModelMetadata(self._meta)

    def get_providers(self) -> list[str]:
        """sliver's kernels stand in for onnxruntime's CPU provider."""
        return ["CPUExecutionProvider"]

    def get_provider_options(self) -> dict[str, dict]:
        """Provider options (none are used)."""
        return {"CPUExecutionProvider": {}}

    def get_session_options(self) -> SessionOptions:
        """The options this session was created with."""
        return self._options

    def set_providers(
        self, providers: Sequence[Any] | None = None, provider_options: Any = None
    ) -> None:
        """Accepted for compatibility."""
        _provider_names(providers)

    def disable_fallback(self) -> None:
        """Accepted for compatibility."""

    def enable_fallback(self) -> None:
        """Accepted for compatibility."""

    # -- running -------------------------------------------------------------------------------
    def _check_feed(self, name: str, value: Any) -> Any:
        v = self._input_values.get(name)
        if v is None:
            return np.asarray(value) if not isinstance(value, np.ndarray) else value
        if v.kind != "tensor":
            return value
        if not isinstance(value, np.ndarray):
            value = np.asarray(value)
        if v.dtype == onnx.TensorProto.STRING:
            if value.dtype.kind not in "OUS":
                raise InvalidArgument(
                    f"input {name!r}: expected tensor(string), got numpy {value.dtype}"
                )
        elif v.dtype:
            want = onnx.helper.tensor_dtype_to_np_dtype(v.dtype)
            if value.dtype != want:
                raise InvalidArgument(
                    f"input {name!r}: expected {_type_string(v)} (numpy {np.dtype(want)}), "
                    f"got numpy {value.dtype}"
                )
        if v.shape is not None:
            if value.ndim != len(v.shape):
                raise InvalidArgument(
                    f"input {name!r}: expected rank {len(v.shape)} with shape {list(v.shape)}, "
                    f"got shape {list(value.shape)}"
                )
            for axis, (want_d, got_d) in enumerate(zip(v.shape, value.shape, strict=True)):
                if isinstance(want_d, int) and want_d != got_d:
                    raise InvalidArgument(
                        f"input {name!r}: dimension {axis} must be {want_d} (model shape "
                        f"{list(v.shape)}), got shape {list(value.shape)}"
                    )
        return value

    def run(
        self,
        output_names: Sequence[str] | None,
        input_feed: dict[str, Any],
        run_options: RunOptions | None = None,
    ) -> list[Any]:
        """Runs the model; returns the requested outputs (all when None) as numpy arrays."""
        if not isinstance(input_feed, dict):
            raise InvalidArgument(
                f"input_feed must be a dict of name -> array, got {type(input_feed).__name__}"
            )
        plan = self._plan
        feeds: list[Any] = []
        unknown = set(input_feed) - set(plan.input_names)
        if unknown:
            raise InvalidArgument(
                f"unknown input name(s) {sorted(unknown)}; the model's inputs are "
                f"{[i.name for i in self._inputs]}"
            )
        for name in plan.input_names:
            if name in input_feed:
                feeds.append(self._check_feed(name, input_feed[name]))
            elif name in self._defaults:
                feeds.append(self._defaults[name])
            else:
                raise InvalidArgument(
                    f"missing input {name!r}; "
                    f"the model's inputs are {[i.name for i in self._inputs]}"
                )
        if output_names is None or len(output_names) == 0:
            wanted = list(range(len(plan.output_names)))
        else:
            try:
                wanted = [self._output_index[n] for n in output_names]
            except KeyError as e:
                raise InvalidArgument(
                    f"unknown output name {e.args[0]!r}; "
                    f"the model's outputs are {plan.output_names}"
                ) from None
        profiling = self._profile is not None
        t0 = time.perf_counter()
        try:
            res = plan.native.run(feeds, wanted, self._pool, profiling)
        except _C.NativeError as e:
            raise RuntimeFailure(str(e)) from None
        if profiling:
            res, times = res
            self._record_profile(t0, times)
        return res

    # -- profiling -----------------------------------------------------------------------------
    def _record_profile(self, t0: float, times: list[float]) -> None:
        ts = (t0 - self._profile_start) * 1e6
        assert self._profile is not None
        for name, op, impl, dt in zip(
            self._plan.step_names, self._plan.step_ops, self._plan.step_impls, times, strict=True
        ):
            self._profile.append(
                {
                    "cat": "Node",
                    "name": name,
                    "ph": "X",
                    "ts": ts,
                    "dur": dt * 1e6,
                    "pid": 0,
                    "tid": 0,
                    "args": {"op_name": op, "provider": impl},
                }
            )
            ts += dt * 1e6

    def end_profiling(self) -> str:
        """Writes the collected per-node timings (Chrome trace JSON); returns the file name."""
        if self._profile is None:
            return ""
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        path = f"{self._options.profile_file_prefix}_{stamp}.json"
        with open(path, "w") as f:
            json.dump(self._profile, f)
        self._profile = []
        return path

    def profile_steps(self) -> list[tuple[str, str, str]]:
        """(node name, op, implementation) per step: which nodes run natively or in Python."""
        p = self._plan
        return list(zip(p.step_names, p.step_ops, p.step_impls, strict=True))

    @property
    def graph(self) -> Graph:
        """The compiled (rewritten) graph, for inspection."""
        return self._graph


__all__ = ["InferenceSession", "NodeArg", "ModelMetadata", "SliverError", "InvalidGraph"]
