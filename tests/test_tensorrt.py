import json
import subprocess

import onnx
import pytest
from test_export_fixtures import exported_dir

from usad.export.tensorrt import check_qdq_rules, to_trt_qdq
from usad.export.trt_operators import TRT_8_5, TRT_10, check_operators


@pytest.fixture(scope="module")
def exported(shared):
    return exported_dir()


@pytest.fixture(scope="module")
def record(exported):
    return json.loads((exported / "export.json").read_text())["tensorrt"]


@pytest.mark.parametrize("target,files", [("tensorrt-10", ["model.plain.onnx", "model.plain.trt.int8.onnx"]),
                                          ("tensorrt-8.5", ["model.opset17.onnx", "model.opset17.trt.int8.onnx"])])
def test_every_node_is_in_the_targets_operator_list(exported, record, target, files):
    for name in files:
        check = check_operators(onnx.load(exported / name), target)
        assert check["passed"], (name, check["unsupported"])
        assert check == record[target]["operators"][name]
    assert "LayerNormalization" not in record["tensorrt-8.5"]["operators"]["model.opset17.onnx"]["operators"]


def test_operator_check_catches_unsupported_ops():
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("LayerNormalization", ["x", "s"], ["y"]),
         onnx.helper.make_node("STFT", ["y", "s"], ["z"])],
        "g", [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, [1])])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    assert check_operators(model, "tensorrt-8.5")["unsupported"] == ["LayerNormalization", "STFT"]
    assert check_operators(model, "tensorrt-10")["passed"]
    assert {"MatMul", "Conv", "QuantizeLinear", "DequantizeLinear"} <= TRT_8_5 & TRT_10


@pytest.mark.parametrize("name", ["model.plain.trt.int8.onnx", "model.opset17.trt.int8.onnx"])
def test_qdq_placement_follows_explicit_quantization_rules(exported, record, name):
    model = onnx.load(exported / name)
    rules = check_qdq_rules(model)
    assert rules["passed"], rules["problems"][:5]
    assert rules["quantized_layers"] == 32
    assert record["tensorrt-10" if name.startswith("model.plain") else "tensorrt-8.5"]["qdq_rules"]["passed"]


def test_qdq_rules_flag_orts_cpu_form(exported):
    """ORT's CPU file dequantizes INT32 biases, which TensorRT cannot: the check must say so."""
    rules = check_qdq_rules(onnx.load(exported / "model.plain.int8.onnx"))
    assert not rules["passed"] and any("zero point" in p for p in rules["problems"])


def test_trt_form_computes_what_the_cpu_int8_computes(exported, tmp_path):
    import numpy as np
    import onnxruntime as ort

    converted = to_trt_qdq(exported / "model.plain.int8.onnx", tmp_path / "t.onnx")
    wave = (np.random.default_rng(0).standard_normal((1, 32_000)) * 0.1).astype(np.float32)
    feed = {"waveforms": wave, "lengths": np.array([32_000])}
    a = ort.InferenceSession(str(exported / "model.plain.int8.onnx")).run(None, feed)[0]
    b = ort.InferenceSession(str(converted)).run(None, feed)[0]
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_build_script_is_valid_shell_with_both_targets(exported, record):
    script = exported / record["script"]
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    for name in ("model.plain.onnx", "model.plain.trt.int8.onnx", "model.opset17.onnx", "model.opset17.trt.int8.onnx"):
        assert f"--onnx={name}" in text
    assert "--minShapes=waveforms:1x400,lengths:1" in text and "--int8" in text and "UNVERIFIED" in text
    assert record["verified_on_device"] is False and "not importable" in record["engines"]
