"""``usad bench all``: latency and accuracy of every model x format in one run, one report.

Accuracy per format: the model dir itself (torch fp32), ``onnx:DIR/model.onnx`` and
``onnx:DIR/model.int8.onnx`` through the torch-free runtime, so INT8's cost in accuracy is
measured on the same task manifests as the float model. The full model (``reference``) is the
retention reference and is benched alongside.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from usad.bench.harness import RESULTS_DIR, result_stem
from usad.bench.latency import Grid, run_latency, write_model_bench
from usad.onnx_conventions import FORMAT_FILES


def accuracy_specs(model_dirs: Sequence[str | Path]) -> dict[str, tuple[str, str]]:
    """Accuracy-bench spec -> (model name, format) for each model dir and each ONNX file it holds."""
    specs = {}
    for directory in map(Path, model_dirs):
        if not directory.is_dir():
            continue
        specs[str(directory)] = (directory.name, "torch-fp32")
        for fmt, name in FORMAT_FILES.items():
            if (directory / name).is_file():
                specs[f"onnx:{directory / name}"] = (directory.name, fmt)
    return specs


def run_all(models: Sequence[str | Path], reference: str | Path | None = None, grid: Grid = Grid(),
            tasks: Sequence[str] | None = None, task_audio: str | Path = "data/tasks", seeds: int = 5,
            out_dir: str | Path = RESULTS_DIR, accuracy_dir: str | Path = "runs/bench-accuracy",
            targets: dict | None = None, log: Callable[[str], None] = print) -> tuple[dict, dict[str, Path]]:
    """Bench ``models`` (and ``reference`` first) for latency and accuracy; returns (report, written paths).

    ``targets``: the limits the report marks met or missed (``combined_report.load_targets``).
    ``out_dir`` gets the dated latency JSON and the report; ``accuracy_dir`` the accuracy bench's own
    files and its embedding cache (kept out of the committed results).

    Presets (no model dir) get latency only: their fresh weights have no accuracy worth reporting.
    """
    from usad.bench.accuracy import run_accuracy
    from usad.bench.combined_report import build_report, latency_markdown, write_combined_report
    from usad.bench.writer import write_report

    specs = [str(reference)] if reference else []
    specs += [str(m) for m in models if str(m) != str(reference)]
    out_dir = Path(out_dir)
    latency = run_latency(specs, grid, log=log)
    write_report(out_dir, result_stem(latency, "latency"), latency, latency_markdown(latency))
    write_model_bench(latency)
    mapping = accuracy_specs(specs)
    accuracy = None
    if mapping:
        log(f"accuracy: {len(mapping)} model x format rows on tasks {', '.join(tasks) if tasks else 'all'}")
        accuracy = run_accuracy(list(mapping), accuracy_dir, list(tasks) if tasks else None, task_audio,
                                seeds=seeds)
    report = build_report(latency, accuracy, mapping, targets=targets)
    return report, write_combined_report(report, out_dir)
