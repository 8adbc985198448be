"""``usad export``: a model dir in, ONNX (parity checked), guarded INT8 and TensorRT files out,
with every figure in ``export.json`` beside them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from usad.export.onnx_export import ExportError, default_graph, export_onnx, resolve_layers
from usad.export.parity import COSINE_TOLERANCE, MAX_ABS_TOLERANCE, PARITY_SECONDS, check_parity, parity_report
from usad.files import atomic_write_json
from usad.onnx_conventions import DEFAULT_OPSET, EXPORT_RECORD, file_names, shippable_files, tensorrt_int8_name
from usad.versions import library_versions

RUNS_ON = {"fused": "onnxruntime (contrib ops: RotaryEmbedding, MultiHeadAttention)",
           "plain": "any ONNX runtime: onnxruntime, TensorRT"}

PARITY_AUDIO_SECONDS = 30.0


def parity_audio(calibration: Sequence[str | Path] | None) -> tuple[np.ndarray | None, str]:
    """30 s of the calibration audio for the parity check; seeded noise (said in export.json) without it."""
    from usad.quantize.calibration import cut_crops, list_sources

    if not calibration:
        return None, "seeded noise (pass --calibration for real audio)"
    return cut_crops(list_sources(list(calibration))[:400], PARITY_AUDIO_SECONDS, 1)[0], "real audio"


def update_export_json(model_dir: Path, updates: dict) -> dict:
    path = model_dir / EXPORT_RECORD
    record = json.loads(path.read_text()) if path.is_file() else {}
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(record.get(key), dict):
            record[key].update(value)
        else:
            record[key] = value
    record["versions"] = library_versions()  # of the last write: what produced the files now recorded
    atomic_write_json(path, record, indent=2)
    return record


def export_model_dir(
    model_dir: str | Path,
    opset: int = DEFAULT_OPSET,
    graph: str | None = None,
    int8: bool = False,
    engine: bool = False,
    layers: list[int] | None = None,
    pooled: bool = False,
    calibration: Sequence[str | Path] | None = None,
    force: bool = False,
    min_cosine: float | None = None,
    parity_seconds: tuple[float, ...] = PARITY_SECONDS,
    max_abs: float = MAX_ABS_TOLERANCE,
    min_parity_cosine: float = COSINE_TOLERANCE,
    quantize_options: dict | None = None,
    task_score: Callable[[str], float] | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Export ``model_dir`` in place; returns the ``export.json`` record.

    ``graph``: "fused" (ONNX Runtime contrib-op attention, the default at opset >= 18) or "plain" (standard
    ONNX; what ``engine`` needs, and the default at opset 17). With ``int8`` the exporter also measures which
    file is faster here and writes it as export.json's ``default`` (``usad.quantize.select``).
    ``calibration``: real audio (dirs of files or .tar shards) for INT8 calibration, the guard and parity;
    required with ``int8``. ``task_score(onnx_path)``: a mean task score (e.g. ``usad.bench.accuracy.
    task_scorer``); the INT8 guard then also requires the retention INT8 / fp32 to reach its threshold.
    Raises ``ExportError`` (parity out of tolerance; the ONNX file is removed, figures kept in
    export.json) or ``usad.quantize.QuantizationRefused`` (INT8 below the guard; fp32 kept).
    """
    from usad.modeldir import load
    from usad.quantize import CalibrationError

    model_dir = Path(model_dir)
    model = load(model_dir)
    graph = graph or ("plain" if engine else default_graph(opset, model.config.streaming))
    if engine and graph == "fused":
        raise ExportError("TensorRT cannot parse ONNX Runtime's contrib ops: export the engine from --graph plain")
    if int8 and not calibration:
        raise CalibrationError("INT8 needs calibration audio: pass --calibration DIR_OR_SHARDS (a few minutes of "
                               "real audio like the deployment's)")
    layers = resolve_layers(layers, model.config.depth)
    fp32_name, int8_name = file_names(opset, graph)
    fp32_path = model_dir / fp32_name
    start = time.perf_counter()
    from usad.modeldir import read_config

    untrained = bool(read_config(model_dir).get("untrained"))
    export_onnx(model, fp32_path, opset=opset, layers=layers, pooled=pooled, graph=graph,
                metadata={"usad_untrained": True} if untrained else None)
    log(f"exported {fp32_path} (opset {opset}, {graph} graph) in {time.perf_counter() - start:.1f} s")
    audio, audio_kind = parity_audio(calibration)
    cases = check_parity(model, fp32_path, layers, pooled, parity_seconds, audio)
    parity = parity_report(cases, max_abs, min_parity_cosine) | {"input": audio_kind}
    entry = {"opset": opset, "exporter": "dynamo" if opset >= DEFAULT_OPSET else "torchscript",
             "graph": graph, "runs_on": RUNS_ON[graph], "layers": layers,
             "output": "embedding" if pooled else "hidden_states",
             "size_bytes": fp32_path.stat().st_size, "parity": parity}
    for case in cases:
        log(f"  parity {case.name:>12}: max abs {case.max_abs_error:.2e}, min cosine {case.min_cosine:.7f}")
    if not parity["passed"]:
        fp32_path.unlink()
        update_export_json(model_dir, {"files": {fp32_name: entry | {"removed": "parity out of tolerance"}}})
        bad = [c for c in cases if not c.ok(max_abs, min_parity_cosine)]
        raise ExportError(f"parity out of tolerance (max abs <= {max_abs:g}, cosine >= {min_parity_cosine:g}): "
                          + "; ".join(f"{c.name}: max abs {c.max_abs_error:.3e}, cosine {c.min_cosine:.7f}, "
                                      f"mask {'ok' if c.mask_equal else 'differs'}" for c in bad))
    record = update_export_json(model_dir, {"files": {fp32_name: entry}})
    if int8:
        options = dict(quantize_options or {})
        if engine:
            options["tensorrt_path"] = model_dir / tensorrt_int8_name(fp32_name)
        record = _export_int8(model, model_dir, fp32_path, model_dir / int8_name, layers, pooled, calibration, force,
                              min_cosine, parity_seconds, audio, options, task_score, log, start)
        log(f"{record['files'][int8_name]['export_seconds']:.0f} s in all (fp32 + INT8); the runtime's default "
            f"file: {record.get('default')}")
    if engine:
        from usad.export.tensorrt import export_engine

        record = update_export_json(model_dir, {"tensorrt": export_engine(model_dir, log=log)})
    return record


def _export_int8(model, model_dir: Path, fp32_path: Path, int8_path: Path, layers, pooled, calibration, force,
                 min_cosine, parity_seconds, audio, options: dict, task_score, log, started: float) -> dict:
    from usad.quantize import QuantizationRefused, quantize_guarded
    from usad.quantize.guard import DEFAULT_MIN_COSINE

    record = json.loads((model_dir / EXPORT_RECORD).read_text())
    same_outputs = {key: record["files"][fp32_path.name][key] for key in ("graph", "layers", "output")}
    graph = same_outputs["graph"]
    baselines = _baselines(model_dir, record, {fp32_path.name, int8_path.name}, same_outputs)
    try:
        report = quantize_guarded(fp32_path, int8_path, calibration, min_cosine=min_cosine or DEFAULT_MIN_COSINE,
                                  task_score=task_score, force=force, baselines=baselines, log=log, **options)
    except QuantizationRefused as err:
        int8_path.unlink(missing_ok=True)  # a stale INT8 file from an earlier export must not be picked up
        update_export_json(model_dir, {"files": {int8_path.name: {"refused": str(err), "guard": err.report}}})
        _set_default(model_dir, fp32_path.name, graph, replaces=int8_path.name)
        raise
    guard = report.to_dict() | {"task_suite": "scored" if task_score else "not run (pass --tasks DIR)"}
    if report.tensorrt_variant:
        from usad.export.tensorrt import to_trt_qdq

        trt_path = model_dir / report.tensorrt_variant["file"]
        to_trt_qdq(trt_path, trt_path)
    cases = check_parity(model, int8_path, layers, pooled, parity_seconds, audio)
    vs_torch = {c.name: {"max_abs_error": c.max_abs_error, "min_cosine": c.min_cosine} for c in cases}
    size = int8_path.stat().st_size
    entry = same_outputs | {"recipe": report.recipe, "size_bytes": size,
             "size_vs_fp32": size / fp32_path.stat().st_size, "guard": guard, "vs_torch_fp32": vs_torch,
             "export_seconds": round(time.perf_counter() - started, 1)}  # fp32 export + parity + INT8
    log(f"wrote {int8_path} (recipe {report.recipe}, {entry['size_vs_fp32']:.0%} of fp32); "
        f"layer groups kept float: {report.final(report.recipe).excluded or 'none'}")
    if report.forced:
        log(f"WARNING: {int8_path.name} is FORCED below the accuracy guard; the runtime keeps fp32 as the default")
    update_export_json(model_dir, {"files": {int8_path.name: entry}})
    default = report.choice["default"]  # never a forced INT8 (usad.quantize.select.choose)
    chosen = {"int8": int8_path.name, "fp32": fp32_path.name}.get(default, default)
    return _set_default(model_dir, chosen, graph, measured=bool(report.choice["median_ms"]))


def _baselines(model_dir: Path, record: dict, exported: set[str], same_outputs: dict) -> dict[str, Path]:
    """The model dir's other files the runtime could run, with this export's outputs (``same_outputs``: layers,
    frames or pooled): the INT8 choice times them too, so that the default is the fastest file of the dir
    whichever graph form was exported last."""
    files = record.get("files") or {}
    return {name: model_dir / name for name in shippable_files(model_dir, record) if name not in exported
            and all((files.get(name) or {}).get(key) == same_outputs[key] for key in ("layers", "output"))}


def _set_default(model_dir: Path, name: str, graph: str, replaces: str | None = None, measured: bool = False) -> dict:
    """export.json's ``default``: the file the runtime runs. A ``measured`` choice (every runnable file of the dir
    timed side by side) sets it; else a fused export owns it, and a plain or opset-17 export sets it only when no
    fused file is the default already, or when the default was the file ``replaces``."""
    record = json.loads((model_dir / EXPORT_RECORD).read_text())
    current = record.get("default")
    current_graph = ((record.get("files") or {}).get(current) or {}).get("graph")
    if measured or graph == "fused" or current_graph != "fused" or current == replaces:
        record = update_export_json(model_dir, {"default": name})
    return record
