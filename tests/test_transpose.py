"""Transpose against numpy, bit for bit, on shapes large enough for the tiled 32-bit kernels
(x32_transpose: 8 x 8 register blocks in 32 x 32 tiles, scalar edges) and the generic strided
copy of other element sizes; the portable twin in a subprocess (SLIVER_ISA=scalar)."""

from __future__ import annotations

import os
import textwrap

import numpy as np
import sliver
from helpers import run_scalar_isa
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

DTYPES = {
    np.float32: TensorProto.FLOAT,
    np.int32: TensorProto.INT32,
    np.uint8: TensorProto.UINT8,
    np.int64: TensorProto.INT64,
    np.float16: TensorProto.FLOAT16,
}


def transpose_model(shape: list[int], perm: list[int], dtype) -> bytes:
    """One Transpose node over an input of `shape`."""
    t = DTYPES[dtype]
    g = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["y"], perm=perm)],
        "t",
        [helper.make_tensor_value_info("x", t, shape)],
        [helper.make_tensor_value_info("y", t, None)],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def check_transpose(shape: list[int], perm: list[int], dtype, seed: int, threads: int = 1) -> None:
    """sliver's Transpose equals numpy's, bit for bit (NaN payloads included for floats)."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=int(np.prod(shape)) * np.dtype(dtype).itemsize, dtype=np.uint8)
    x = raw.view(dtype).reshape(shape)
    so = sliver.SessionOptions()
    so.intra_op_num_threads = threads
    sess = sliver.InferenceSession(transpose_model(shape, perm, dtype), so)
    got = sess.run(None, {"x": x})[0]
    want = np.transpose(x, perm)
    assert got.shape == want.shape
    assert got.tobytes() == np.ascontiguousarray(want).tobytes(), (shape, perm, dtype)


@given(
    seed=st.integers(0, 2**31 - 1),
    shape=st.lists(st.integers(1, 70), min_size=2, max_size=4),
    data=st.data(),
    dtype=st.sampled_from(list(DTYPES)),
)
@settings(max_examples=40, deadline=None)
def test_transpose_random(seed: int, shape: list[int], data, dtype) -> None:
    if int(np.prod(shape)) > 400_000:
        shape = shape[:2]
    perm = data.draw(st.permutations(list(range(len(shape)))))
    check_transpose(shape, list(perm), dtype, seed)


def test_transpose_layouts() -> None:
    """The layout changes models make: NHWC <-> NCHW, K^T of attention, a matrix, with edges of
    every size below the 8 x 8 block and the 32 x 32 tile, on 1 and 2 threads."""
    cases = [
        ([1, 29, 31, 64], [0, 3, 1, 2]),
        ([2, 67, 9, 13], [0, 2, 3, 1]),
        ([1, 12, 33, 64], [0, 1, 3, 2]),
        ([77, 45], [1, 0]),
        ([1, 40, 40, 3], [0, 3, 1, 2]),
        ([3, 5, 8, 8], [3, 2, 1, 0]),
    ]
    for i, (shape, perm) in enumerate(cases):
        for dtype in (np.float32, np.uint8):
            for threads in (1, 2):
                check_transpose(shape, perm, dtype, seed=i, threads=threads)


def test_transpose_scalar_twin_in_subprocess() -> None:
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import test_transpose as t
        t.test_transpose_layouts()
        print("scalar ok")
        """
    )
    run_scalar_isa(code)
