"""``usad bench accuracy``: every model probed on identical task manifests, clean and in noise; JSON,
markdown, plot.

Columns: each task clean (``T1-digit``) and in each noisy condition (``T1-digit@snr0``). The headline
mean is over the clean and 0 dB columns of every task. The reference row (the full model) is the
first model spec that is a model dir, else the first spec; the best-teacher row takes, per column,
the best of the teacher rows (``teacher:...`` specs). Each row shows per-domain means, retention
against the reference and against the best teacher.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from usad.bench import scoring, summary
from usad.bench.embeddings import extract
from usad.bench.encoders import load_encoder
from usad.bench.report import accuracy_markdown, write_plot
from usad.bench.writer import write_report
from usad.data.interference import CONDITIONS
from usad.data.tasks import TASKS, build_tasks, clip_path

HEADLINE_CONDITIONS = ("clean", "snr0")
console = Console(stderr=True)


def column(task: str, condition: str) -> str:
    return task if condition == "clean" else f"{task}@{condition}"


def _task_data(name: str, audio_dir: Path, manifests: Path | None, build_missing: bool, noisy: bool,
               train_noisy: bool) -> dict | str:
    """The task's manifest as built in ``audio_dir`` (built from the committed one when missing), or
    a one-line reason why it cannot be scored."""
    built = audio_dir / f"{name}.json"
    manifest = json.loads(built.read_text()) if built.is_file() else None
    wanted = {"train", "val", "test"} if train_noisy else {"val", "test"}
    done = (manifest or {}).get("built", {})
    complete = manifest is not None and (not noisy or done.get("noisy_missing")
                                         or wanted <= set(done.get("noisy_splits", [])))
    if manifest is None and not build_missing:
        raise FileNotFoundError(f"{built}: task audio not built; run `usad data tasks --out {audio_dir}`")
    if not complete and build_missing:  # without building, a task lacking noisy clips is scored clean only
        report = build_tasks(audio_dir, [name], manifests=manifests, noisy=noisy, train_mixtures=train_noisy)[name]
        if report["missing"]:
            return report["missing"]
        manifest = json.loads(built.read_text())
    splits = {r["split"] for r in manifest["rows"]}
    if splits != {"train", "val", "test"}:
        problems = manifest.get("problems") or ["none recorded"]
        return f"no audio for its {', '.join(sorted({'train', 'val', 'test'} - splits))} split " \
               f"({len(problems)} build problems, e.g. {problems[0]})"
    missing = [r["id"] for r in manifest["rows"] if not clip_path(audio_dir, name, r["id"]).is_file()]
    if missing:
        raise FileNotFoundError(f"{audio_dir / name}: {len(missing)} clips missing (e.g. {missing[0]}); rebuild it")
    return manifest


def _score_task(encoder, manifest: dict, audio_dir: Path, cache: Path, progress, seeds: int,
                conditions: tuple[str, ...], train_noisy: bool) -> dict[str, dict]:
    """{condition: ProbeResult dict} of one encoder on one task."""
    rows = manifest["rows"]
    test_rows = [r for r in rows if r["split"] == "test"]
    data = extract(encoder, manifest, audio_dir, cache, progress)
    if not train_noisy:
        tests = {c: extract(encoder, manifest, audio_dir, cache, progress, c, test_rows) for c in conditions}
        results = scoring.probe(manifest, data, seeds, tests)
    else:  # each condition's probe trained and chosen on that condition's training and validation clips
        results = {"clean": scoring.probe(manifest, data, seeds)["clean"]}
        for c in conditions:
            noisy = {**extract(encoder, manifest, audio_dir, cache, progress, c)}
            results[c] = scoring.probe(manifest, noisy, seeds)["clean"]
    return {c: r.to_dict() for c, r in results.items()}


def run_accuracy(models: list[str], out: str | Path, tasks: list[str] | None = None,
                 audio_dir: str | Path = "data/tasks", manifests: str | Path | None = None,
                 seeds: int = 5, build_missing: bool = True, conditions: tuple[str, ...] = tuple(CONDITIONS),
                 train_noisy: bool = False) -> dict:
    """Probe every model on every task and condition; writes accuracy.json, .md and .png in ``out``.

    A task whose audio cannot be built is skipped with its reason (``result["skipped"]``)."""
    out, audio_dir = Path(out), Path(audio_dir)
    unknown = set(conditions) - set(CONDITIONS)
    if unknown:
        raise ValueError(f"unknown conditions {sorted(unknown)}; choose from {list(CONDITIONS)}")
    names = tasks or list(TASKS)
    if set(names) - set(TASKS):
        raise ValueError(f"unknown tasks {sorted(set(names) - set(TASKS))}; choose from {list(TASKS)}")
    encoders = [load_encoder(spec) for spec in models]  # a bad spec fails before any work
    task_data, skipped = {}, {}
    for name in names:
        got = _task_data(name, audio_dir, Path(manifests) if manifests else None, build_missing, bool(conditions),
                         train_noisy)
        if isinstance(got, str):
            skipped[name] = got
            console.print(f"[yellow]{name}: skipped: {got}[/]")
            continue
        task_data[name] = got
        if conditions and not set(conditions) <= set(got.get("built", {}).get("conditions", [])):
            skipped[f"{name} in noise"] = got.get("built", {}).get("noisy_missing") or "noisy clips not built"
            console.print(f"[yellow]{name}: noisy conditions skipped: {skipped[f'{name} in noise']}[/]")
    if not task_data:
        raise FileNotFoundError(f"no task could be scored ({'; '.join(f'{k}: {v}' for k, v in skipped.items())})")
    rows, timing = [], {}
    load_before = os.getloadavg()
    progress_columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*progress_columns, console=console) as progress:
        for spec, encoder in zip(models, encoders):
            started = time.perf_counter()
            row = {"model": encoder.name, "spec": spec, "fingerprint": encoder.fingerprint, "tasks": {}}
            for name, manifest in task_data.items():
                task_started = time.perf_counter()
                if manifest["kind"] == "frame" and encoder.frame_rate is None:
                    scored = {c: None for c in ("clean", *conditions)}  # a clip-level encoder has no frames
                else:
                    built = tuple(c for c in conditions if c in manifest.get("built", {}).get("conditions", []))
                    scored = _score_task(encoder, manifest, audio_dir, out / "cache", progress, seeds, built,
                                         train_noisy)
                    scored |= {c: None for c in conditions if c not in scored}
                for c, result in scored.items():
                    row["tasks"][column(name, c)] = result
                timing.setdefault(encoder.name, {})[name] = round(time.perf_counter() - task_started, 1)
            timing[encoder.name]["total"] = round(time.perf_counter() - started, 1)
            rows.append(row)
    result = summary.summarize(rows, models, task_data, conditions)
    result.update(seeds=seeds, skipped=skipped, train_noisy=train_noisy,
                  timing={"seconds": timing, "load_before": [round(x, 2) for x in load_before],
                          "load_after": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()})
    out.mkdir(parents=True, exist_ok=True)
    write_report(out, "accuracy", result, accuracy_markdown(result), lambda path: write_plot(result, path))
    return result


def merge_runs(runs: list[str | Path], out: str | Path, audio_dir: str | Path = "data/tasks") -> dict:
    """One report from ``accuracy.json`` files of separate runs on the same built tasks (each run's
    probe results and times kept as they are; runs of one model on different tasks join into one row,
    whose missing tasks stay n/a). The aggregates, reference and best-teacher row are computed over
    all of them. Writes accuracy.json, .md and .png in ``out``."""
    loaded = [json.loads(Path(run).read_text()) for run in runs]
    first = loaded[0]
    for run, result in zip(runs, loaded):
        if (result["conditions"], result["seeds"]) != (first["conditions"], first["seeds"]):
            raise ValueError(f"{run}: other conditions or seeds than {runs[0]}; cannot merge")
    names = [t for t in TASKS if any(t in r["tasks"] for r in loaded)]
    by_spec: dict[str, dict] = {}
    for result in loaded:
        for row in result["models"]:
            keys = {k: row[k] for k in ("model", "spec", "fingerprint")}
            merged = by_spec.setdefault(row["spec"], {**keys, "tasks": {}})
            merged["tasks"].update({c: v for c, v in row["tasks"].items() if v is not None})
    rows = list(by_spec.values())
    task_data = {name: json.loads((Path(audio_dir) / f"{name}.json").read_text()) for name in names}
    result = summary.summarize(rows, list(by_spec), task_data, tuple(first["conditions"][1:]))
    # The time of the suite: runs of every task only (a run of a few tasks is no suite time).
    timing = [r["timing"] for r in loaded if set(names) <= set(r["tasks"])] or [first["timing"]]
    result.update(seeds=first["seeds"], skipped=first.get("skipped", {}), train_noisy=first.get("train_noisy", False),
                  timing={"seconds": {m: t for run in timing for m, t in run["seconds"].items()},
                          "cpus": timing[0]["cpus"], "load_before": timing[0]["load_before"],
                          "load_after": timing[-1]["load_after"],
                          "runs": {m: {k: run[k] for k in ("load_before", "load_after")}
                                   for run in timing for m in run["seconds"]}})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_report(out, "accuracy", result, accuracy_markdown(result), lambda path: write_plot(result, path))
    return result


def task_scorer(audio_dir: str | Path, seeds: int = 3) -> Callable[[str], float]:
    """``score(onnx_path)``: the mean clean task score of an ONNX file on the suite built in ``audio_dir``
    (the INT8 guard's task check, handed to ``usad.export.export_model_dir``)."""
    import tempfile

    def score(onnx_path: str) -> float:
        with tempfile.TemporaryDirectory(prefix="usad-guard-tasks-") as out:
            result = run_accuracy([onnx_path], out, audio_dir=audio_dir, seeds=seeds, build_missing=False,
                                  conditions=())
        return result["models"][0]["mean"]

    return score
