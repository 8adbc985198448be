"""``usad bench``: the accuracy bench (latency and all join this group)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from usad.cli import app
from usad.errors import require

console = Console(stderr=True)
bench_app = typer.Typer(no_args_is_help=True, help="Bench encoders: downstream accuracy (and speed).")
app.add_typer(bench_app, name="bench")


@bench_app.command()
def accuracy(
    models: list[str] = typer.Argument(..., help="Model specs: MODEL_DIR, fbank, random:PRESET, teacher:KIND:PATH, "
                                                 "onnx:PATH or FILE.onnx. The first model dir is the reference."),
    tasks: list[str] = typer.Option(None, "--tasks", help="Only these tasks (repeat the flag); default T1-T6."),
    out: Path = typer.Option(Path("bench-results/accuracy"), help="Folder for accuracy.json/.md/.png and the cache."),
    data: Path = typer.Option(Path("data/tasks"), help="Task audio built by `usad data tasks` (built when missing)."),
    seeds: int = typer.Option(5, help="Probe seeds per task."),
):
    """Probe frozen encoders on the task suite; JSON, markdown table and plot."""
    require("bench", "usad bench accuracy")
    from usad.bench.accuracy import run_accuracy

    result = run_accuracy(models, out, tasks or None, data, seeds=seeds)
    console.print((out / "accuracy.md").read_text())
    console.print(f"wrote {out}/accuracy.json, accuracy.md, accuracy.png (reference: {result['reference']})")
