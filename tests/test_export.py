import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from test_export_fixtures import calibration_audio, exported_dir, tiny_dir, work_dir
from typer.testing import CliRunner

import usad
from usad.cli import app
from usad.export.onnx_export import ExportError, export_onnx
from usad.export.parity import check_parity, parity_report
from usad.export.pipeline import export_model_dir


@pytest.fixture(scope="module")
def exported(shared):
    return exported_dir()


@pytest.mark.parametrize("name", ["model.onnx", "model.plain.onnx", "model.opset17.onnx"])
def test_parity_at_all_lengths_and_padded_batch_recorded(exported, name):
    """The fused graph (contrib-op attention, padded keys masked in the scores) and both plain ones match
    torch on real audio at 1 / 3.7 / 10 / 30 s and on a padded batch of those four."""
    export_record = json.loads((exported / "export.json").read_text())
    assert {"torch", "onnx", "onnxruntime", "usad_edge"} <= set(export_record["versions"])  # what produced it
    record = export_record["files"][name]
    parity = record["parity"]
    assert parity["passed"] and parity["input"] == "real audio"
    cases = {c["name"]: c for c in parity["cases"]}
    assert set(cases) == {"1s", "3.7s", "10s", "30s", "padded_batch"}
    for case in cases.values():
        assert case["max_abs_error"] < 1e-3 and case["min_cosine"] > 0.99999 and case["mask_equal"]
    assert record["opset"] == (17 if "opset17" in name else 18)
    assert record["exporter"] == ("torchscript" if "opset17" in name else "dynamo")
    assert record["graph"] == ("fused" if name == "model.onnx" else "plain")
    domains = {n.domain for n in onnx.load(exported / name).graph.node}
    assert ("com.microsoft" in domains) == (name == "model.onnx")  # plain graphs stay standard ONNX


def test_fused_graph_runs_attention_as_contrib_ops_without_a_score_mask(exported):
    ops = [n.op_type for n in onnx.load(exported / "model.onnx").graph.node]
    assert ops.count("MultiHeadAttention") == 6 and ops.count("RotaryEmbedding") == 12
    assert "IsNaN" not in ops and "Softmax" not in ops  # no guard, no (B, H, T, T) scores in the graph
    plain = [n.op_type for n in onnx.load(exported / "model.plain.onnx").graph.node]
    assert "MultiHeadAttention" not in plain and "Softmax" in plain


def test_onnx_has_dynamic_batch_and_length(exported):
    graph = onnx.load(exported / "model.onnx").graph
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert all(isinstance(d, str) for d in dims["waveforms"]) and isinstance(dims["lengths"][0], str)


def test_padded_batch_matches_single_clips(exported):
    import onnxruntime as ort

    session = ort.InferenceSession(str(exported / "model.onnx"))
    rng = np.random.default_rng(1)
    clips = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (16_000, 40_000, 7_000)]
    batch = np.zeros((3, 40_000), np.float32)
    for i, c in enumerate(clips):
        batch[i, : c.size] = c
    hidden, mask = session.run(None, {"waveforms": batch, "lengths": np.array([c.size for c in clips])})
    for i, c in enumerate(clips):
        alone, alone_mask = session.run(None, {"waveforms": c[None], "lengths": np.array([c.size])})
        frames = alone_mask.sum()
        assert mask[i].sum() == frames
        np.testing.assert_allclose(hidden[i, :, :frames], alone[0], atol=2e-4)
        assert not hidden[i, :, frames:].any()  # padded frames are zero


def test_pooled_export_with_chosen_layers(tmp_path):
    torch.manual_seed(0)
    model = usad.create_model("usad-nano").eval()
    path = export_onnx(model, tmp_path / "pooled.onnx", opset=17, layers=[2, -1], pooled=True)
    cases = check_parity(model, path, [2, 4], True, seconds=(1.0, 2.5))
    assert parity_report(cases)["passed"]
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert json.loads(meta["usad_layers"]) == [2, 4] and meta["usad_output"] == "embedding"


def test_parity_out_of_tolerance_fails_with_figures_and_removes_file(shared):
    target = work_dir() / "tiny-strict"
    shutil.copytree(tiny_dir(), target)
    with pytest.raises(ExportError, match=r"1s: max abs [0-9.e-]+, cosine"):
        export_model_dir(target, opset=17, max_abs=1e-12, parity_seconds=(1.0, 2.0), calibration=calibration_audio(),
                         log=lambda m: None)
    assert not (target / "model.opset17.onnx").exists()
    record = json.loads((target / "export.json").read_text())["files"]["model.opset17.onnx"]
    assert record["parity"]["passed"] is False and record["parity"]["cases"][0]["max_abs_error"] > 0


def test_parity_detects_a_different_model(exported):
    torch.manual_seed(1)
    other = usad.create_model("usad-tiny")
    report = parity_report(check_parity(other, exported / "model.opset17.onnx", list(range(7)), False, (1.0,)))
    assert not report["passed"] and report["cases"][0]["min_cosine"] < 0.99


def test_export_wrapper_rejects_bad_layers():
    with pytest.raises(ExportError, match="out of range"):
        export_onnx(usad.create_model("usad-nano"), "/tmp/never.onnx", layers=[9])


def test_cli_export_bad_model_dir_exits_nonzero(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    result = CliRunner().invoke(app, ["export", str(tmp_path)])
    assert result.exit_code == 2
    assert "config.json" in result.output
