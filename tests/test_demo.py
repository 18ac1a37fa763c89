"""The bundled main-job model: loads, keeps its accuracy, and the CLI commands work on it."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
import sliver
from sliver import cli

MIN_ACCURACY = 0.95


def test_bundled_model_accuracy_matches_onnxruntime() -> None:
    data = np.load(cli.DEMO_DATA)
    x, y = data["images"], data["labels"]
    sess = sliver.InferenceSession(cli.DEMO_MODEL)
    logits = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    acc = float(np.mean(np.argmax(logits, 1) == y))
    assert acc >= MIN_ACCURACY
    # onnxruntime as written (no fusions) is the spec-like path; its fused integer path rounds
    # differently and flips a few more predictions.
    so = onnxruntime.SessionOptions()
    so.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    ref = onnxruntime.InferenceSession(cli.DEMO_MODEL, so, providers=["CPUExecutionProvider"])
    ref_logits = ref.run(None, {ref.get_inputs()[0].name: x})[0]
    # Same predictions on (nearly) every image: ties may round differently by an LSB.
    agree = float(np.mean(np.argmax(ref_logits, 1) == np.argmax(logits, 1)))
    assert agree >= 0.99


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--repeat", "3"],
        ["run", cli.DEMO_MODEL, "--repeat", "2", "--dim", "N=3"],
        ["inspect", cli.DEMO_MODEL],
        ["bench", cli.DEMO_MODEL, "--repeat", "3"],
        ["profile", cli.DEMO_MODEL, "--repeat", "2"],
    ],
)
def test_cli_commands(argv, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # profile writes its trace into the working directory
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.strip()
    if argv[0] == "demo":
        assert "accuracy" in out and "onnxruntime" in out
    if argv[0] == "inspect":
        assert "zeros" in out and "compiled steps" in out


def test_cli_run_with_input_file(tmp_path, capsys) -> None:
    x = np.load(cli.DEMO_DATA)["images"][:4]
    np.save(tmp_path / "x.npy", x)
    name = sliver.InferenceSession(cli.DEMO_MODEL).get_inputs()[0].name
    assert (
        cli.main(
            ["run", cli.DEMO_MODEL, "--input", f"{name}={tmp_path / 'x.npy'}", "--repeat", "1"]
        )
        == 0
    )
    assert "[4, 10]" in capsys.readouterr().out
