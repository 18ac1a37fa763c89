"""ONNX conformance: every backend node test shipped with the onnx wheel runs through sliver.

A case listed in onnx_node_expected_failures.txt must fail (strict xfail: one that starts
passing is reported, so the list only shrinks); every other case must pass.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
import warnings

import numpy as np
import pytest
import sliver
from onnx_node_cases import node_cases, run_case

EXPECTED_FAILURES_FILE = pathlib.Path(__file__).with_name("onnx_node_expected_failures.txt")
_NEEDS_MODULE = re.compile(r"needs module ([\w.]+):")


def expected_failures() -> dict[str, str]:
    """name -> reason, from the expected-failures file (comments and blank lines skipped)."""
    out: dict[str, str] = {}
    for line in EXPECTED_FAILURES_FILE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition("#")
        out[name.strip()] = reason.strip()
    return out


def _still_expected(reason: str) -> bool:
    m = _NEEDS_MODULE.match(reason)
    return m is None or importlib.util.find_spec(m.group(1)) is None


_XFAIL = expected_failures()
_CASES = node_cases()


def test_expected_failures_are_known_cases():
    unknown = sorted(set(_XFAIL) - set(_CASES))
    assert not unknown, f"expected-failure entries that are no node case: {unknown}"
    assert all(_XFAIL.values()), "every expected failure needs a reason"


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(reason=_XFAIL[n], strict=True))
        if n in _XFAIL and _still_expected(_XFAIL[n])
        else n
        for n in sorted(_CASES)
    ],
)
def test_node(name: str) -> None:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        run_case(_CASES[name], sliver.InferenceSession)
