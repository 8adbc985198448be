"""ONNX conventions shared by export, quantize, the runtime and the bench: the file names of a model dir,
the order the runtime prefers them in, and how a CPU inference session is opened. onnxruntime only.

Two graph forms (``GRAPHS``), recorded per file in export.json: "fused" runs attention as ONNX Runtime's
contrib ops (RotaryEmbedding, MultiHeadAttention: one flash kernel, no mask over the scores), ONNX Runtime
only; "plain" is standard ONNX (attention as MatMul/Softmax with the padding guard), what TensorRT and
JetPack parse, and the graph of the first release, kept so before/after ratios stay measurable.

| file | written by | for |
|---|---|---|
| model.onnx | usad export (dynamo, opset >= 18, fused) | ONNX Runtime |
| model.int8.onnx | usad export --int8 | ONNX Runtime on CPU: the INT8 recipe the exporter chose |
| model.int8.RECIPE.onnx | usad export --int8 --keep-candidates | every INT8 recipe tried, for the bench |
| model.plain.onnx, model.plain.int8.onnx | usad export --graph plain [--int8] | TensorRT 10, before/after |
| model.opset17.onnx | usad export --opset 17 (legacy exporter, plain) | TensorRT 8.5/8.6 (JetPack 5, 6.0) |
| model.opset17.int8.onnx | usad export --opset 17 --int8 | ONNX Runtime, opset 17 |
| model.plain.trt.int8.onnx, model.opset17.trt.int8.onnx | usad export --int8 --format engine | TensorRT explicit INT8 |
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_OPSET = 18  # the dynamo exporter; ONNX Runtime and TensorRT >= 10
LEGACY_OPSET = 17  # the TorchScript exporter; TensorRT 8.5/8.6
EXPORT_RECORD = "export.json"
GRAPHS = ("fused", "plain")
# INT8 recipes (usad.quantize.recipes): static QDQ of Conv + MatMul, dynamic INT8 of the weight MatMuls
# (Conv float), and mixed (static QDQ Conv, dynamic MatMul).
INT8_RECIPES = ("static", "dynamic", "mixed")

# Bench format -> file, best first: the runtime takes the first file present that was not forced past the guard
# (unless export.json names a measured default). Recipe candidates come last: the runtime never picks them itself.
FORMAT_FILES = {
    "onnx-int8": "model.int8.onnx",
    "onnx-fp32": "model.onnx",
    "onnx-int8-plain": "model.plain.int8.onnx",
    "onnx-fp32-plain": "model.plain.onnx",
    "onnx-int8-opset17": "model.opset17.int8.onnx",
    "onnx-fp32-opset17": "model.opset17.onnx",
    **{f"onnx-int8-{recipe}": f"model.int8.{recipe}.onnx" for recipe in INT8_RECIPES},
}
RUNTIME_PREFERENCE = tuple(FORMAT_FILES.values())
# Streaming models' stateful chunk step (`usad export --stream`), by precision.
STREAM_FILES = {"int8": "model.stream.int8.onnx", "fp32": "model.stream.onnx"}


def file_names(opset: int, graph: str = "fused") -> tuple[str, str]:
    """(fp32, int8) file names written for ``opset`` and ``graph`` (opset 17 is always plain)."""
    if graph not in GRAPHS:
        raise ValueError(f"graph must be one of {GRAPHS}, got {graph!r}")
    if opset < DEFAULT_OPSET:
        stem = f"model.opset{opset}"
    else:
        stem = "model" if graph == "fused" else "model.plain"
    return f"{stem}.onnx", f"{stem}.int8.onnx"


def recipe_file(int8_name: str, recipe: str) -> str:
    """The kept candidate file of one INT8 recipe: model.int8.onnx -> model.int8.dynamic.onnx."""
    return int8_name.removesuffix(".onnx") + f".{recipe}.onnx"


def tensorrt_int8_name(fp32_name: str) -> str:
    """The TensorRT-form INT8 twin (symmetric activations) of an fp32 file name."""
    return fp32_name.removesuffix(".onnx") + ".trt.int8.onnx"


def is_int8(name: str) -> bool:
    return ".int8." in name


def cpu_session(model: str | Path | bytes, threads: int | None = None):
    """An ``onnxruntime.InferenceSession`` on the CPU provider. ``threads``: intra-op threads (None: one per
    core); one inter-op thread, since the encoder graph is a chain. ``model``: a path or serialized bytes."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # ORT warns about unused initializers of quantized copies: not actionable
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _export_record(model_dir: Path) -> dict:
    import json

    path = model_dir / EXPORT_RECORD
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}  # the runtime can still pick by name; `usad info` reports the unreadable record


def forced_int8(record: dict, name: str) -> bool:
    """Whether export.json says ``name`` was written with --force below its accuracy guard."""
    return bool(((record.get("files") or {}).get(name) or {}).get("guard", {}).get("forced"))


def shippable_files(model_dir: str | Path, record: dict | None = None) -> list[str]:
    """The files of ``model_dir`` the runtime may run unasked, best first: present, not a recipe candidate
    (``recipe_file``), not forced past the guard. ``record``: its export.json (read when None)."""
    model_dir = Path(model_dir)
    record = _export_record(model_dir) if record is None else record
    candidates = {recipe_file(FORMAT_FILES["onnx-int8"], recipe) for recipe in INT8_RECIPES}
    return [n for n in RUNTIME_PREFERENCE
            if n not in candidates and (model_dir / n).is_file() and not forced_int8(record, n)]


def choose_file(model_dir: str | Path, prefer: str | None = None) -> Path | None:
    """The ONNX file the runtime runs from a model dir, or None when it has none.

    export.json's ``default`` (the file the exporter measured best) when present; else the first of
    ``shippable_files``. ``prefer``: "fp32" takes float files only, "int8" INT8 files only (a forced one
    included)."""
    if prefer not in (None, "fp32", "int8"):
        raise ValueError(f"prefer must be fp32 or int8, got {prefer!r}")
    model_dir = Path(model_dir)
    record = _export_record(model_dir)
    names = [n for n in RUNTIME_PREFERENCE if (model_dir / n).is_file()]
    if prefer is not None:
        return next((model_dir / n for n in names if is_int8(n) == (prefer == "int8")), None)
    default = record.get("default")
    if default in names:
        return model_dir / default
    return next((model_dir / n for n in shippable_files(model_dir, record)), None)
