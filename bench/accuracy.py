"""``usad bench accuracy``: every model probed on identical task manifests; JSON, markdown, plot.

The reference row (the full model) is the first model spec that is a model dir, else the first
spec; every row shows retention = score / reference score per task and for the mean.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from usad.bench.embeddings import extract
from usad.bench.encoders import load_encoder
from usad.bench.probe import run_probe
from usad.bench.report import accuracy_markdown, write_plot
from usad.bench.writer import write_report
from usad.data.tasks import TASKS, build_tasks, clip_path


def _task_data(name: str, audio_dir: Path, manifests: Path | None, build_missing: bool) -> dict:
    """The task's manifest as built in ``audio_dir`` (built from the committed one when missing)."""
    built = audio_dir / f"{name}.json"
    if not built.is_file():
        if not build_missing:
            raise FileNotFoundError(f"{built}: task audio not built; run `usad data tasks --out {audio_dir}`")
        build_tasks(audio_dir, [name], manifests=manifests)
    manifest = json.loads(built.read_text())
    missing = [r["id"] for r in manifest["rows"] if not clip_path(audio_dir, name, r["id"]).is_file()]
    if missing:
        raise FileNotFoundError(f"{audio_dir / name}: {len(missing)} clips missing (e.g. {missing[0]}); rebuild it")
    return manifest


def _labels(manifest: dict, data: dict) -> tuple[np.ndarray, np.ndarray]:
    splits = np.array([r["split"] for r in manifest["rows"]])
    if manifest["kind"] == "frame":
        return data["labels"], splits
    index = {c: i for i, c in enumerate(manifest["classes"])}
    return np.array([index[r["label"]] for r in manifest["rows"]]), splits


def run_accuracy(models: list[str], out: str | Path, tasks: list[str] | None = None,
                 audio_dir: str | Path = "data/tasks", manifests: str | Path | None = None,
                 seeds: int = 5, build_missing: bool = True) -> dict:
    """Probe every model on every task; writes accuracy.json, accuracy.md and accuracy.png in ``out``."""
    out, audio_dir = Path(out), Path(audio_dir)
    names = tasks or list(TASKS)
    task_data = {name: _task_data(name, audio_dir, Path(manifests) if manifests else None, build_missing)
                 for name in names}
    rows = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns) as progress:
        for spec in models:
            encoder = load_encoder(spec)
            row = {"model": encoder.name, "spec": spec, "fingerprint": encoder.fingerprint, "tasks": {}}
            for name, manifest in task_data.items():
                if manifest["kind"] == "frame" and encoder.frame_rate is None:
                    row["tasks"][name] = None  # a clip-level encoder has no frames to probe
                    continue
                data = extract(encoder, manifest, audio_dir, out / "cache", progress)
                labels, splits = _labels(manifest, data)
                bar = progress.add_task(f"probe {encoder.name} {name}", total=1)
                row["tasks"][name] = run_probe(data, labels, splits, seeds).to_dict()
                progress.advance(bar)
            rows.append(row)
    reference = next((r for r, spec in zip(rows, models) if Path(spec).is_dir()), rows[0])
    for row in rows:
        _summarize(row, reference, task_data)
    info = {n: _task_info(m) for n, m in task_data.items()}
    result = {"reference": reference["model"], "seeds": seeds, "tasks": info,
              "models": rows}
    write_report(out, "accuracy", result, accuracy_markdown(result), lambda path: write_plot(result, path))
    return result


def task_scorer(audio_dir: str | Path, seeds: int = 3) -> Callable[[str], float]:
    """``score(onnx_path)``: the mean task score of an ONNX file on the suite built in ``audio_dir`` (the INT8
    guard's task check, handed to ``usad.export.export_model_dir``)."""
    import tempfile

    def score(onnx_path: str) -> float:
        with tempfile.TemporaryDirectory(prefix="usad-guard-tasks-") as out:
            result = run_accuracy([onnx_path], out, audio_dir=audio_dir, seeds=seeds, build_missing=False)
        return result["models"][0]["mean"]

    return score


def _task_info(manifest: dict) -> dict:
    info = {k: manifest[k] for k in ("about", "kind", "real", "held_out", "classes")}
    info["rows"] = {s: sum(r["split"] == s for r in manifest["rows"]) for s in ("train", "val", "test")}
    info["build_problems"] = len(manifest.get("problems", []))
    return info


def _mean(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _summarize(row: dict, reference: dict, task_data: dict) -> None:
    """Means over all / real / synthetic tasks, and retention against the reference row."""
    scores = {n: (t["score"] if t else None) for n, t in row["tasks"].items()}
    row["mean"] = _mean(list(scores.values()))
    row["mean_real"] = _mean([s for n, s in scores.items() if task_data[n]["real"]])
    row["mean_synthetic"] = _mean([s for n, s in scores.items() if not task_data[n]["real"]])
    ref = {n: (t["score"] if t else None) for n, t in reference["tasks"].items()}
    row["retention"] = {n: (s / ref[n] if s is not None and ref.get(n) else None) for n, s in scores.items()}
    common = [n for n in scores if scores[n] is not None and ref.get(n)]
    row["retention_mean"] = (float(np.mean([scores[n] for n in common]) / np.mean([ref[n] for n in common]))
                             if common else None)
