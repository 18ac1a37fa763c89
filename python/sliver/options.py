"""onnxruntime-compatible option objects: SessionOptions, RunOptions, enums."""

from __future__ import annotations

import enum
import warnings


class GraphOptimizationLevel(enum.IntEnum):
    """How much the compiler rewrites the graph (names and values as in onnxruntime)."""

    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_LAYOUT = 3
    ORT_ENABLE_ALL = 99


class ExecutionMode(enum.IntEnum):
    """Accepted for compatibility; sliver always runs steps in order."""

    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1


class SessionOptions:
    """Per-session settings. Unknown onnxruntime settings are accepted and ignored.

    sliver-specific settings go through ``add_session_config_entry`` with keys
    starting ``sliver.`` (e.g. ``sliver.sparse`` = ``auto`` | ``dense`` | ``sparse``).
    """

    def __init__(self) -> None:
        self.intra_op_num_threads: int = 0
        self.inter_op_num_threads: int = 0
        self.graph_optimization_level: GraphOptimizationLevel = (
            GraphOptimizationLevel.ORT_ENABLE_ALL
        )
        self.enable_profiling: bool = False
        self.profile_file_prefix: str = "sliver_profile"
        self.optimized_model_filepath: str = ""
        self.execution_mode: ExecutionMode = ExecutionMode.ORT_SEQUENTIAL
        self.log_severity_level: int = 2
        self.log_verbosity_level: int = 0
        self.logid: str = ""
        self.enable_cpu_mem_arena: bool = True
        self.enable_mem_pattern: bool = True
        self.enable_mem_reuse: bool = True
        self.use_deterministic_compute: bool = False
        self._config: dict[str, str] = {}
        self._free_dims: dict[str, int] = {}
        self._initializers: dict[str, object] = {}

    def add_session_config_entry(self, key: str, value: str) -> None:
        """Stores a config entry (onnxruntime keys are accepted and ignored)."""
        self._config[str(key)] = str(value)

    def get_session_config_entry(self, key: str) -> str:
        """Returns a stored config entry; raises KeyError-like RuntimeError when absent."""
        if key not in self._config:
            raise RuntimeError(f"session config entry {key!r} not found")
        return self._config[key]

    def add_free_dimension_override_by_name(self, name: str, value: int) -> None:
        """Fixes a symbolic dimension to a value (used to resolve shapes at creation)."""
        self._free_dims[name] = int(value)

    def add_free_dimension_override_by_denotation(self, denotation: str, value: int) -> None:
        """Accepted for compatibility; denotations are not used by sliver."""
        warnings.warn("sliver ignores free dimension overrides by denotation", stacklevel=2)

    def register_custom_ops_library(self, path: str) -> None:
        """Custom-op libraries are onnxruntime binaries; sliver cannot load them."""
        warnings.warn(f"sliver cannot load custom op library {path!r}; ignored", stacklevel=2)

    def add_initializer(self, name: str, value) -> None:  # noqa: ANN001
        """Overrides an initializer's value at session creation."""
        self._initializers[name] = value


class RunOptions:
    """Per-run settings; accepted for compatibility."""

    def __init__(self) -> None:
        self.log_severity_level: int = 2
        self.log_verbosity_level: int = 0
        self.logid: str = ""
        self.terminate: bool = False
        self.only_execute_path_to_fetches: bool = False
        self._config: dict[str, str] = {}

    def add_run_config_entry(self, key: str, value: str) -> None:
        """Stores a run config entry (ignored)."""
        self._config[str(key)] = str(value)
