import json

import numpy as np
import onnx
import pytest
from test_export_fixtures import calibration_audio, exported_dir

from usad.quantize import CalibrationError, QuantizationRefused, calibration_and_heldout, quantize_guarded
from usad.quantize.calibration import list_sources
from usad.quantize.roles import graph_roles
from usad.quantize.static import quantized_nodes

# Fewer, shorter crops: the refusal paths measure every node's sensitivity.
TINY_QUANT = {"crop_seconds": 2.0, "calibration_crops": 8, "heldout_crops": 3}


@pytest.fixture(scope="module")
def exported(shared):
    return exported_dir()


@pytest.fixture(scope="module")
def fp32(exported):
    return exported / "model.opset17.onnx"


@pytest.fixture(scope="module")
def roles(fp32):
    from usad.quantize.roles import ensure_node_names

    return graph_roles(ensure_node_names(onnx.load(fp32)))


@pytest.mark.parametrize("name", ["model.int8.onnx", "model.opset17.int8.onnx"])
def test_int8_passes_guard_with_fbank_and_attention_float(exported, name):
    record = json.loads((exported / "export.json").read_text())["files"][name]
    guard = record["guard"]
    assert guard["passed"] and not guard["forced"] and guard["excluded"] == []
    assert guard["attempts"][0]["cosine"] >= 0.99
    assert guard["kept_float"]["fbank"] and len(guard["kept_float"]["attention_matmul"]) == 12  # QK^T, AV x 6
    quantized = set(quantized_nodes(onnx.load(exported / name)))
    assert len(quantized) == len(guard["quantized_nodes"]) == 32  # 8 Conv + 4 x 6 Linear
    assert not quantized & set(guard["kept_float"]["fbank"] + guard["kept_float"]["attention_matmul"])
    # INT8 weights, not float: the file shrinks to about a third (fbank DFT basis stays float)
    assert record["size_vs_fp32"] < 0.35
    assert min(c["min_cosine"] for c in record["vs_torch_fp32"].values()) > 0.99
    assert guard["tensorrt_variant"]["cosine"] >= 0.99  # the symmetric twin for TensorRT


def test_guard_measures_and_excludes_the_fbank_when_it_is_a_candidate(fp32, roles, tmp_path):
    out = tmp_path / "int8.onnx"
    report = quantize_guarded(fp32, out, calibration_audio(), include_fbank=True, **TINY_QUANT)
    assert report.attempts[0].cosine < 0.95  # quantizing the mel matmul breaks the model...
    assert report.passed and out.is_file()
    mel = next(n for n in roles.fbank if "MatMul" in n)
    assert mel in report.excluded  # ...and leave-one-in sensitivity finds it, measured not guessed
    assert list(report.sensitivity)[: len(report.excluded)] == report.excluded
    assert max(report.sensitivity.values()) > 100 * np.median(list(report.sensitivity.values()))


def test_guard_refuses_broken_quantization_and_keeps_nothing(fp32, roles, tmp_path):
    out = tmp_path / "int8.onnx"
    mel = next(n for n in roles.fbank if "MatMul" in n)
    with pytest.raises(QuantizationRefused, match="INT8 refused: embedding cosine 0\\.[0-9]+ < 0.99") as err:
        quantize_guarded(fp32, out, calibration_audio(), force_nodes=[mel], max_exclude_fraction=0.1, **TINY_QUANT)
    assert not out.exists()
    report = err.value.report
    assert not report["passed"] and len(report["attempts"]) >= 2 and report["excluded"]
    assert mel not in report["excluded"]


def test_force_writes_a_failing_int8_and_says_so(fp32, roles, tmp_path):
    out = tmp_path / "int8.onnx"
    mel = next(n for n in roles.fbank if "MatMul" in n)
    report = quantize_guarded(fp32, out, calibration_audio(), force_nodes=[mel], force=True,
                              max_exclude_fraction=0.0, min_cosine=0.999999, **TINY_QUANT)
    assert out.is_file() and report.forced and not report.passed and mel in report.quantized_nodes


def test_cli_refusal_exits_nonzero_and_keeps_fp32(exported, tmp_path):
    import shutil

    from typer.testing import CliRunner

    from usad.cli import app

    target = tmp_path / "m"
    shutil.copytree(exported, target)
    (target / "model.int8.onnx").unlink()
    # An unreachable threshold: the guard must refuse even after excluding nodes.
    result = CliRunner().invoke(app, ["export", str(target), "--int8", "--opset", "17", "--min-cosine", "1.01",
                                      "--calibration", str(calibration_audio()[0]), "--crop-seconds", "2",
                                      "--calibration-crops", "6", "--heldout-crops", "2", "--max-exclude", "0"])
    assert result.exit_code == 2, result.output
    assert "INT8 refused" in result.output
    assert (target / "model.opset17.onnx").is_file() and not (target / "model.opset17.int8.onnx").exists()
    record = json.loads((target / "export.json").read_text())["files"]["model.opset17.int8.onnx"]
    assert "refused" in record and len(record["guard"]["attempts"]) == 1


def test_calibration_errors_are_clear(tmp_path):
    with pytest.raises(CalibrationError, match="does not exist"):
        list_sources([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CalibrationError, match="no audio files"):
        calibration_and_heldout([tmp_path / "empty"])



def test_calibration_crops_are_fixed_length_real_audio(shared):
    cal, held = calibration_and_heldout(calibration_audio(), 3.0, 12, 4)
    assert len(cal) == 12 and len(held) == 4
    assert {c.size for c in cal + held} == {48_000}
    assert all(np.abs(c).max() > 0.01 for c in cal)
