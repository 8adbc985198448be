"""TensorRT path: operator and explicit-quantization checks, ``build_engine.sh`` (trtexec) and, where
the ``tensorrt`` Python package is importable, the engine build itself (FP16; INT8 from the QDQ graph).

Engine building is unverified on this project's machines (TensorRT cannot be installed here).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from usad.export.trt_operators import check_operators
from usad.onnx_conventions import LEGACY_OPSET, file_names, tensorrt_int8_name
from usad.quantize.roles import QUANTIZABLE_OPS

SCRIPT = "build_engine.sh"
# Optimisation profile over clip length (samples at 16 kHz) and batch: min / opt / max.
PROFILE_SAMPLES = (400, 160_000, 480_000)
PROFILE_BATCH = (1, 1, 8)
# (fp32 ONNX, TensorRT-form INT8 ONNX, engine stem) per target.
TARGET_FILES = {
    target: (fp32, tensorrt_int8_name(fp32), fp32.removesuffix(".onnx"))
    for target, fp32 in (("tensorrt-10", file_names(LEGACY_OPSET + 1, "plain")[0]),
                         ("tensorrt-8.5", file_names(LEGACY_OPSET, "plain")[0]))
}


def to_trt_qdq(int8_path: str | Path, out_path: str | Path) -> Path:
    """Rewrite ORT's QDQ file (INT8 weight initializers -> DequantizeLinear) into the form TensorRT 8.x
    and 10 both import: float weights -> QuantizeLinear -> DequantizeLinear, same scales, same integers;
    ORT's INT32 biases become float again (TensorRT quantizes biases itself)."""
    model = onnx.load(int8_path)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    new_nodes, int32_biases = [], []
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in inits:
            continue
        q = numpy_helper.to_array(inits[node.input[0]])
        scale = numpy_helper.to_array(inits[node.input[1]])
        if q.dtype == np.int32:  # ORT's INT32 bias: TensorRT dequantizes INT8 only, so the bias goes back to float
            graph.initializer.append(numpy_helper.from_array((q * scale).astype(np.float32), node.output[0]))
            int32_biases.append(node)
            continue
        if q.dtype != np.int8:
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        shape = [1] * q.ndim
        if scale.ndim:
            shape[axis] = -1
        weight = numpy_helper.from_array((q.astype(np.float32) * scale.reshape(shape)).astype(np.float32),
                                         node.input[0] + "_float")
        graph.initializer.append(weight)
        q_out = node.input[0] + "_requant"
        attrs = {"axis": axis} if scale.ndim else {}
        new_nodes.append((node, helper.make_node("QuantizeLinear", [weight.name, node.input[1], node.input[2]],
                                                 [q_out], name=node.name + "_weight_q", **attrs)))
        node.input[0] = q_out
    for dq, q in new_nodes:
        graph.node.insert(list(graph.node).index(dq), q)
    for node in int32_biases:
        graph.node.remove(node)
    used = {i for n in graph.node for i in n.input}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    onnx.save(model, out_path)
    return Path(out_path)


def check_qdq_rules(model: onnx.ModelProto) -> dict:
    """TensorRT explicit quantization (developer guide, "Explicit Quantization"; operators.md rows for
    QuantizeLinear/DequantizeLinear): scales constant and positive, zero points 0 and INT8, per-channel
    only on weights along the output channel, activations per-tensor, and every quantized
    Conv/MatMul/Gemm fed by DequantizeLinear on both inputs so TensorRT fuses it into an INT8 layer."""
    graph = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    problems = []
    qdq = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    for node in qdq:
        scale = inits.get(node.input[1])
        zero = inits.get(node.input[2]) if len(node.input) > 2 else None
        if scale is None or not np.all(scale > 0) or not np.all(np.isfinite(scale)):
            problems.append(f"{node.name}: scale must be a positive constant")
        if zero is None or zero.dtype != np.int8 or np.any(zero != 0):
            problems.append(f"{node.name}: zero point must be an INT8 constant 0")
        if scale is None or scale.size <= 1:
            continue
        source = producer.get(node.input[0])
        weight = node.input[0] if node.input[0] in inits else (
            source.input[0] if source is not None and source.input[0] in inits else None)
        if weight is None:
            problems.append(f"{node.name}: per-channel scale on an activation; TensorRT wants per-tensor there")
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1) % inits[weight].ndim
        for consumer in (n for n in graph.node if node.output[0] in n.input):
            last = inits[weight].ndim - 1
            expected = {"Conv": 0, "MatMul": last, "Gemm": last}.get(consumer.op_type)
            if expected is not None and axis != expected:
                problems.append(f"{node.name}: per-channel axis {axis}, {consumer.op_type} needs the output "
                                f"channel axis {expected}")
    quantized = 0
    for node in graph.node:
        if node.op_type not in QUANTIZABLE_OPS:
            continue
        fed = [producer.get(i) is not None and producer[i].op_type == "DequantizeLinear" for i in node.input[:2]]
        if any(fed):
            quantized += 1
            if not all(fed):
                problems.append(f"{node.name}: only {sum(fed)} of 2 inputs quantized; TensorRT runs it in float")
    return {"qdq_nodes": len(qdq), "quantized_layers": quantized, "problems": problems, "passed": not problems}


def _shapes(flag: str, index: int) -> str:
    batch, samples = PROFILE_BATCH[index], PROFILE_SAMPLES[index]
    return f"--{flag}Shapes=waveforms:{batch}x{samples},lengths:{batch}"


def trtexec_commands(onnx_name: str, engine_name: str, int8: bool) -> list[str]:
    command = ["trtexec", f"--onnx={onnx_name}", f"--saveEngine={engine_name}", "--fp16"]
    if int8:
        command.append("--int8")  # explicit quantization: INT8 where the QDQ graph says, FP16 elsewhere
    command += [_shapes("min", 0), _shapes("opt", 1), _shapes("max", 2)]
    return [shlex.join(command)]


def write_build_script(model_dir: Path) -> Path:
    """``build_engine.sh`` with the trtexec commands for each target whose ONNX file is present."""
    lines = ["#!/usr/bin/env bash",
             "# Build TensorRT engines on the Jetson itself (engines are specific to GPU and TensorRT version).",
             "# Written by `usad export --format engine`; UNVERIFIED here: no TensorRT on the build machines.",
             f"# Profile: batch {PROFILE_BATCH} x samples {PROFILE_SAMPLES} (min/opt/max) at 16 kHz.",
             "# TensorRT 8.x casts the int64 'lengths' input to int32: feed int32 lengths to those engines.",
             "set -euo pipefail", 'cd "$(dirname "$0")"', "",
             'TRT_MAJOR="${TRT_MAJOR:-$(dpkg-query -W -f=\'${Version}\' libnvinfer-bin 2>/dev/null | cut -d. -f1)}"',
             'TRT_MAJOR="${TRT_MAJOR:-10}"', ""]
    sections = {"tensorrt-10": "JetPack 6.1+ (TensorRT 10): dynamo export, opset 18, plain graph",
                "tensorrt-8.5": "JetPack 5.1 / 6.0 (TensorRT 8.5 / 8.6): legacy export, opset 17"}
    for i, (target, (fp32, trt_int8, stem)) in enumerate(TARGET_FILES.items()):
        test = '-ge 10' if target == "tensorrt-10" else '-lt 10'
        lines.append(f"# {sections[target]}")
        lines.append(f'if [ "$TRT_MAJOR" {test} ]; then')
        body = []
        if (model_dir / fp32).is_file():
            body += trtexec_commands(fp32, f"{stem}.fp16.engine", int8=False)
        else:
            body.append(f"echo 'no {fp32}: run usad export {'--opset 17' if i else '--graph plain'} first' >&2")
        if (model_dir / trt_int8).is_file():
            body += trtexec_commands(trt_int8, f"{stem}.int8.engine", int8=True)
        lines += [f"  {line}" for line in body] + ["fi", ""]
    path = model_dir / SCRIPT
    path.write_text("\n".join(lines))
    path.chmod(0o755)
    return path


def build_engine(onnx_path: Path, engine_path: Path, int8: bool) -> dict:
    """Build a serialized engine with the TensorRT Python API (FP16, plus INT8 for QDQ graphs)."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        return {"built": False, "error": f"{onnx_path}: TensorRT parser: {errors}"}
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    if int8:
        config.set_flag(trt.BuilderFlag.INT8)
    profile = builder.create_optimization_profile()
    profile.set_shape("waveforms", *[(b, s) for b, s in zip(PROFILE_BATCH, PROFILE_SAMPLES)])
    profile.set_shape("lengths", *[(b,) for b in PROFILE_BATCH])
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        return {"built": False, "error": f"{onnx_path}: TensorRT builder returned no engine"}
    engine_path.write_bytes(bytes(serialized))
    return {"built": True, "engine": engine_path.name, "tensorrt": trt.__version__}


def export_engine(model_dir: str | Path, log=print) -> dict:
    """Checks for every ONNX file present (the TensorRT INT8 files are written by ``usad export --int8
    --format engine``), build_engine.sh, and engines when ``tensorrt`` is importable. Returns the
    ``tensorrt`` section of export.json."""
    model_dir = Path(model_dir)
    report: dict = {"verified_on_device": False}
    for target, (fp32, trt_int8, _) in TARGET_FILES.items():
        if not (model_dir / fp32).is_file():
            continue
        entry = {"operators": {fp32: check_operators(onnx.load(model_dir / fp32), target)}}
        if (model_dir / trt_int8).is_file():
            trt_model = onnx.load(model_dir / trt_int8)
            entry["operators"][trt_int8] = check_operators(trt_model, target)
            entry["qdq_rules"] = check_qdq_rules(trt_model)
        for name, check in entry["operators"].items():
            log(f"{target}: {name} operators {'ok' if check['passed'] else 'UNSUPPORTED ' + str(check['unsupported'])}")
        report[target] = entry
    report["script"] = write_build_script(model_dir).name
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        report["engines"] = "not built: the tensorrt package is not importable here; run build_engine.sh on the Jetson"
        log(report["engines"])
        return report
    engines = {}
    for fp32, trt_int8, stem in TARGET_FILES.values():
        for name, int8 in ((fp32, False), (trt_int8, True)):
            if (model_dir / name).is_file():
                engine = model_dir / f"{stem}.{'int8' if int8 else 'fp16'}.engine"
                engines[name] = build_engine(model_dir / name, engine, int8)
    report["engines"] = engines
    return report
