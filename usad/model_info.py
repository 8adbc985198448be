"""What ``usad info`` says about a model dir or .onnx file: config, size, cost, and each file the runtime can run.

Works on any model dir: torch weights only, ONNX only (the packaged default model), or both. Without torch it
reads counts from config.json; with torch it also counts GFLOPs per second of audio on the architecture.
"""

from __future__ import annotations

import json
from pathlib import Path

from usad.onnx_conventions import EXPORT_RECORD, RUNTIME_PREFERENCE, choose_file, forced_int8, is_int8
from usad.runtime import Encoder, RuntimeModelError, read_json

Rows = list[tuple[str, str]]


def describe(model: str | Path) -> Rows:
    """(field, value) rows for a model dir or one .onnx file. Raises ``RuntimeModelError`` naming a bad file
    (truncated ONNX, garbage JSON, weights or ONNX that do not match config.json)."""
    path = Path(model)
    if path.suffix == ".onnx" and path.is_file():
        return _onnx_rows(path.parent, [path], {})
    if not path.is_dir():
        raise RuntimeModelError(f"{path}: not a model directory or an .onnx file")
    config_path = path / "config.json"
    config = read_json(config_path) if config_path.is_file() else {}
    onnx_files = [path / n for n in RUNTIME_PREFERENCE if (path / n).is_file()]
    weights = sorted(path.glob("*.safetensors"))
    if weights and not config:
        raise RuntimeModelError(f"{config_path}: missing; the safetensors weights need it")
    if not config and not onnx_files:
        raise RuntimeModelError(f"{path}: not a model directory (no config.json, no ONNX file)")
    if config and "encoder" not in config:
        raise RuntimeModelError(f"{config_path}: no 'encoder' section")
    record = read_json(path / EXPORT_RECORD) if (path / EXPORT_RECORD).is_file() else {}
    onnx_rows = _onnx_rows(path, onnx_files, record)  # first: a broken ONNX file fails before torch loads
    rows: Rows = []
    if config:
        rows.append(("variant", str(config.get("variant"))))
        rows += [(key, str(value)) for key, value in config["encoder"].items()]
        rows += _cost_rows(path, config, bool(weights))
    rows += onnx_rows
    rows.append(("torch weights", ", ".join(w.name for w in weights) or "none (ONNX only)"))
    rows.append(("files", ", ".join(sorted(p.name for p in path.iterdir()))))
    for key in ("distillation", "compression"):
        if key in config:
            rows.append((key, json.dumps(config[key])[:200]))
    return rows


def _cost_rows(path: Path, config: dict, has_weights: bool) -> Rows:
    """Parameters and GFLOPs: counted on the torch model when torch is installed (loading the weights checks
    them against config.json), else the parameter count config.json records."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return [("parameters", f"{config['parameters'] / 1e6:.2f} M (config.json)" if "parameters" in config
                 else "unknown"), ("GFLOPs / s audio", "needs torch: pip install 'usad-edge[train]'")]
    from usad.config import EncoderConfig
    from usad.model import UsadEncoder, count_parameters
    from usad.modeldir import ModelDirError, load

    try:
        encoder = load(path) if has_weights else UsadEncoder(EncoderConfig.from_dict(config["encoder"]))
    except (ModelDirError, TypeError, ValueError) as err:
        raise RuntimeModelError(str(err)) from err
    return [("parameters", f"{count_parameters(encoder) / 1e6:.2f} M"),
            ("GFLOPs / s audio", f"{encoder.gflops_per_second():.3f}")]


def _onnx_rows(directory: Path, files: list[Path], record: dict) -> Rows:
    """One row per ONNX file: size, hidden states it returns, INT8 guard, and which one the runtime runs."""
    if not files:
        return [("ONNX", "none: run `usad export` for the torch-free runtime")]
    default = choose_file(directory) if files[0].parent == directory and len(files) > 1 else files[0]
    rows: Rows = []
    for file in files:
        encoder = Encoder(file, threads=1)  # loads the session: a truncated or foreign file fails here
        entry = (record.get("files") or {}).get(file.name) or {}
        notes = [f"{file.stat().st_size / 1e6:.1f} MB", f"hidden states {list(encoder.layers)}",
                 "INT8" if is_int8(file.name) else "fp32"]
        if "guard" in entry:
            last = (entry["guard"].get("attempts") or [{}])[-1]
            notes.append("FORCED past its accuracy guard" if forced_int8(record, file.name)
                         else f"accuracy guard passed (held-out cosine {last.get('cosine', float('nan')):.5f})")
        if file == default:
            notes.append("runtime default")
        rows.append((file.name, ", ".join(notes)))
    return rows

