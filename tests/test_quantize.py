import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from test_export_fixtures import FAST_QUANT, calibration_audio, exported_dir, tiny_dir, work_dir

from usad.onnx_conventions import INT8_RECIPES, recipe_file
from usad.quantize import CalibrationError, QuantizationRefused, calibration_and_heldout, quantize_guarded
from usad.quantize.calibration import list_sources
from usad.quantize.roles import graph_roles
from usad.quantize.select import choose
from usad.quantize.static import int8_weight_peak, quantized_nodes

# Fewer, shorter crops and one recipe: the refusal paths measure every layer group's sensitivity.
TINY_QUANT = {"crop_seconds": 2.0, "calibration_crops": 8, "heldout_crops": 3, "latency_seconds": 1.0,
              "recipes": ("static",)}


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


def _record(exported, name):
    return json.loads((exported / "export.json").read_text())["files"][name]


@pytest.mark.parametrize("name", ["model.int8.onnx", "model.plain.int8.onnx", "model.opset17.int8.onnx"])
def test_int8_passes_guard_with_fbank_and_attention_float_on_every_kernel(exported, name):
    record = _record(exported, name)
    guard = record["guard"]
    assert guard["passed"] and not guard["forced"] and guard["excluded"] == []
    final = [a for a in guard["attempts"] if a["recipe"] == record["recipe"]][-1]
    assert final["cosine"] >= 0.995 and final["clip_cosine"] >= 0.999  # per-frame, min over held-out clips
    model = onnx.load(exported / name)
    # 7-bit weights: no x86 U8S8 kernel saturates, so non-VNNI CPUs compute what this one does. Full 8-bit
    # weights (peak 127) passed here but fell to cosine 0.94-0.97 on AVX2-only CPUs: the flaky test of issue 14.
    assert int8_weight_peak(model) == guard["int8_weight_peak"] == 64
    plain = record["graph"] == "plain"
    assert guard["kept_float"]["fbank"] and len(guard["kept_float"]["attention_matmul"]) == (12 if plain else 0)
    quantized = set(quantized_nodes(model))
    expected = {"static": 32, "mixed": 32, "dynamic": 25}[record["recipe"]]  # 7 Conv + 25 Linear, or Linear only
    assert len(quantized) == len(guard["quantized_nodes"]) == expected
    assert not quantized & set(guard["kept_float"]["fbank"] + guard["kept_float"]["attention_matmul"])
    assert record["size_vs_fp32"] < 0.4  # INT8 weights, not float (the fbank DFT basis stays float)
    assert record["export_seconds"] > 0
    assert min(c["min_cosine"] for c in record["vs_torch_fp32"].values()) > 0.995
    if plain:
        assert guard["tensorrt_variant"]["cosine"] >= 0.995  # the symmetric twin for TensorRT


def test_every_recipe_is_guarded_timed_and_kept(exported):
    record = json.loads((exported / "export.json").read_text())
    guard = record["files"]["model.int8.onnx"]["guard"]
    assert guard["recipes"] == list(INT8_RECIPES) == [a["recipe"] for a in guard["attempts"]]
    choice = guard["choice"]
    passed = [a["recipe"] for a in guard["attempts"] if a["passed"]]
    assert set(choice["median_ms"]) == {"fp32", *passed} and all(v > 0 for v in choice["median_ms"].values())
    fastest = min(passed, key=lambda r: choice["median_ms"][r])
    assert choice["recipe"] == guard["recipe"] == record["files"]["model.int8.onnx"]["recipe"] == fastest
    assert choice["default"] in ("int8", "fp32") and choice["reason"]  # the first export: nothing else to time
    # The plain exports after it timed the files already there too: the last one's pick is the dir's default.
    last = record["files"]["model.opset17.int8.onnx"]["guard"]["choice"]
    assert set(last["median_ms"]) == {"fp32", "static", "model.onnx", "model.int8.onnx", "model.plain.onnx",
                                      "model.plain.int8.onnx"}
    resolved = {"int8": "model.opset17.int8.onnx", "fp32": "model.opset17.onnx"}
    assert record["default"] == resolved.get(last["default"], last["default"])
    for recipe in INT8_RECIPES:
        assert (exported / recipe_file("model.int8.onnx", recipe)).is_file()
    kept = exported / recipe_file("model.int8.onnx", fastest)
    assert (exported / "model.int8.onnx").read_bytes() == kept.read_bytes()


def test_selection_never_ships_a_slower_int8():
    slower = choose({"fp32": 10.0, "static": 12.0, "dynamic": 10.2}, ["static", "dynamic"])
    assert slower.default == "fp32" and slower.recipe == "dynamic" and "fp32 is the default" in slower.reason
    faster = choose({"fp32": 10.0, "static": 6.0, "dynamic": 7.0}, ["static", "dynamic"])
    assert faster.default == "int8" and faster.recipe == "static"
    assert choose({"fp32": 10.0, "static": 6.0}, []).default == "fp32"
    assert choose({"fp32": 10.0, "static": 9.8}, ["static"]).default == "fp32"  # within noise is not faster
    # Baselines: the model dir's other files, timed in the same run. A faster float graph form stays the default
    # even though this export's INT8 beats its own fp32; a faster INT8 already there stays too.
    other_graph = choose({"fp32": 10.0, "model.onnx": 6.0, "dynamic": 7.0}, ["dynamic"], ["model.onnx"])
    assert other_graph.default == "model.onnx" and other_graph.recipe == "dynamic"
    assert "fp32 model.onnx is the default" in other_graph.reason
    earlier_int8 = choose({"fp32": 10.0, "model.int8.onnx": 5.0, "dynamic": 7.0}, ["dynamic"], ["model.int8.onnx"])
    assert earlier_int8.default == "model.int8.onnx" and earlier_int8.recipe == "dynamic"
    beats_both = choose({"fp32": 10.0, "model.onnx": 8.0, "model.int8.onnx": 7.0, "dynamic": 6.0}, ["dynamic"],
                        ["model.onnx", "model.int8.onnx"])
    assert beats_both.default == "int8" and "vs fp32 model.onnx 8.0 ms" in beats_both.reason
    assert choose({"fp32": 10.0, "model.onnx": 6.0}, [], ["model.onnx"]).default == "model.onnx"


def test_plain_int8_is_guarded_against_plain_and_timed_against_the_fused_graph(shared, monkeypatch):
    """--graph plain: the guard's reference and the timing's fp32 are the plain graph exported now; the fused
    model.onnx already in the dir is timed beside them and, faster here, stays what the runtime runs."""
    import usad.quantize.guard as guard_module
    from usad.export.pipeline import export_model_dir
    from usad.runtime import Encoder

    timed, reference = {}, []

    def fused_fastest(paths, *args, **kwargs):
        timed.update(paths)
        reference.extend(n.op_type for n in onnx.load(paths["fp32"]).graph.node)  # a temporary copy: read it now
        return {"fp32": 30.0, "model.onnx": 20.0, "dynamic": 25.0}, {"seconds": 1.0, "rounds": 0}

    monkeypatch.setattr(guard_module, "time_models", fused_fastest)
    target = work_dir() / "tiny-plain-after-fused"
    shutil.copytree(tiny_dir(), target)
    export_model_dir(target, parity_seconds=(1.0,), log=lambda m: None)  # fused fp32, no INT8
    record = export_model_dir(target, graph="plain", int8=True, calibration=calibration_audio(),
                              parity_seconds=(1.0,), quantize_options=FAST_QUANT | {"recipes": ("dynamic",)},
                              log=lambda m: None)
    assert set(timed) == {"fp32", "model.onnx", "dynamic"} and timed["model.onnx"] == target / "model.onnx"
    assert "Softmax" in reference and "MultiHeadAttention" not in reference  # the plain graph, not the fused one
    entry = record["files"]["model.plain.int8.onnx"]
    assert entry["graph"] == "plain" and len(entry["guard"]["kept_float"]["attention_matmul"]) == 12
    assert entry["guard"]["passed"] and entry["guard"]["choice"]["default"] == "model.onnx"
    assert record["default"] == "model.onnx" and Encoder(target).path.name == "model.onnx"


def test_export_makes_fp32_the_default_when_int8_measures_slower(shared, monkeypatch):
    """Forced case: the timing says INT8 is slower; the INT8 file is written, fp32 stays what the runtime runs."""
    import usad.quantize.guard as guard_module
    from usad.export.pipeline import export_model_dir
    from usad.runtime import Encoder

    def int8_slower(paths, *args, **kwargs):
        return {name: 20.0 if name == "fp32" else 25.0 for name in paths}, {"seconds": 1.0, "rounds": 0}

    monkeypatch.setattr(guard_module, "time_models", int8_slower)
    target = work_dir() / "tiny-int8-slower"
    shutil.copytree(tiny_dir(), target)
    record = export_model_dir(target, int8=True, calibration=calibration_audio(), parity_seconds=(1.0,),
                              quantize_options=FAST_QUANT | {"recipes": ("dynamic",)}, log=lambda m: None)
    assert record["default"] == "model.onnx" and (target / "model.int8.onnx").is_file()
    assert "no INT8 recipe beats fp32" in record["files"]["model.int8.onnx"]["guard"]["choice"]["reason"]
    assert Encoder(target).path.name == "model.onnx"
    assert Encoder(target, prefer="int8").path.name == "model.int8.onnx"


def test_guard_measures_and_excludes_the_fbank_when_it_is_a_candidate(fp32, roles, tmp_path):
    out = tmp_path / "int8.onnx"
    report = quantize_guarded(fp32, out, calibration_audio(), include_fbank=True, **TINY_QUANT)
    assert report.attempts[0].cosine < 0.95  # quantizing the mel matmul breaks the model...
    assert report.passed and out.is_file()
    mel = next(n for n in roles.fbank if "MatMul" in n)
    assert mel in report.excluded  # ...and the layer-group sensitivity finds it, measured not guessed
    assert list(report.sensitivity)[0] == "model.fbank" == report.final("static").excluded[0]
    assert max(report.sensitivity.values()) > 100 * np.median(list(report.sensitivity.values()))
    assert len(report.sensitivity) == 1 + 1 + 1 + 6  # fbank, subsampler, positional encoder, 6 blocks
    # no timer handed in: nothing measured, so the INT8 file is written but never made the default
    assert report.choice["default"] == "fp32" and "not timed" in report.choice["reason"]


def test_guard_refuses_broken_quantization_and_keeps_nothing(fp32, roles, tmp_path):
    out = tmp_path / "int8.onnx"
    mel = next(n for n in roles.fbank if "MatMul" in n)
    with pytest.raises(QuantizationRefused, match="INT8 refused: per-frame cosine 0\\.[0-9]+ < 0.995") as err:
        quantize_guarded(fp32, out, calibration_audio(), force_nodes=[mel], max_exclude_fraction=0.1, **TINY_QUANT)
    assert not out.exists()
    report = err.value.report
    assert not report["passed"] and len(report["attempts"]) >= 2 and report["sensitivity"]
    assert "model.fbank" not in report["sensitivity"]  # a forced node is never a candidate for exclusion


def test_force_writes_a_failing_int8_and_says_so(fp32, roles, tmp_path):
    out = tmp_path / "int8.onnx"
    mel = next(n for n in roles.fbank if "MatMul" in n)
    report = quantize_guarded(fp32, out, calibration_audio(), force_nodes=[mel], force=True,
                              max_exclude_fraction=0.0, min_cosine=0.999999, **TINY_QUANT)
    assert out.is_file() and report.forced and not report.passed and mel in report.quantized_nodes
    assert report.choice["default"] == "fp32" and "forced" in report.choice["reason"]


def test_cli_refusal_exits_nonzero_and_keeps_fp32(exported, tmp_path):
    import subprocess
    import sys

    target = tmp_path / "m"
    shutil.copytree(exported, target)
    (target / "model.opset17.int8.onnx").unlink()
    # An unreachable threshold: the guard must refuse even after excluding nodes.
    usad_cli = str(Path(sys.executable).parent / "usad")
    result = subprocess.run([usad_cli, "export", str(target), "--int8", "--opset", "17",
                             "--min-cosine", "1.01", "--recipes", "static", "--calibration",
                             str(calibration_audio()[0]), "--crop-seconds", "2", "--calibration-crops", "6",
                             "--heldout-crops", "2", "--max-exclude", "0"], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert "INT8 refused" in result.stderr and "Traceback" not in result.stderr
    assert (target / "model.opset17.onnx").is_file() and not (target / "model.opset17.int8.onnx").exists()
    record = json.loads((target / "export.json").read_text())
    assert "refused" in record["files"]["model.opset17.int8.onnx"]
    assert len(record["files"]["model.opset17.int8.onnx"]["guard"]["attempts"]) == 1


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
