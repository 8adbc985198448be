"""``usad bench``: the accuracy bench (latency and all join this group)."""

from __future__ import annotations

import json
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
                                                 "onnx:PATH or FILE.onnx. The first model dir is the reference; "
                                                 "teacher rows make the best-teacher row."),
    tasks: list[str] = typer.Option(None, "--tasks", help="Only these tasks (repeat the flag); default T1-T10."),
    out: Path = typer.Option(Path("bench-results/accuracy"), help="Folder for accuracy.json/.md/.png and the cache."),
    data: Path = typer.Option(Path("data/tasks"), help="Task audio built by `usad data tasks` (built when missing)."),
    seeds: int = typer.Option(5, min=1, help="Probe seeds per task."),
    condition: list[str] = typer.Option(None, "--condition", help="Noisy conditions to score (repeat the flag): "
                                                                  "snr5, snr0; default both."),
    clean_only: bool = typer.Option(False, help="Score the clean clips only."),
    train_noisy: bool = typer.Option(False, help="Train and choose each noisy condition's probe on mixtures "
                                                 "(builds the training mixtures) instead of clean clips."),
):
    """Probe frozen encoders on the task suite, clean and in noise; JSON, markdown tables and plot."""
    require("bench", "usad bench accuracy")
    from usad.bench.accuracy import run_accuracy
    from usad.data.interference import CONDITIONS
    from usad.modeldir import ModelDirError
    from usad.teachers import TeacherError

    conditions = () if clean_only else tuple(condition or CONDITIONS)
    try:
        result = run_accuracy(models, out, tasks or None, data, seeds=seeds, conditions=conditions,
                              train_noisy=train_noisy)
    except (FileNotFoundError, ValueError, KeyError, TeacherError, ModelDirError, OSError) as err:
        console.print(f"[red]usad bench accuracy: {err}[/]")
        raise typer.Exit(2) from err
    console.print((out / "accuracy.md").read_text())
    console.print(f"wrote {out}/accuracy.json, accuracy.md, accuracy.png (reference: {result['reference']})")


@bench_app.command()
def decode(
    corpus: Path = typer.Argument(..., help="A corpus folder (manifest.json and shards), as usad data corpus builds."),
    minutes: float = typer.Option(10.0, help="Audio sampled from the corpus (whole shards, domains in turn)."),
    workers: str = typer.Option("1,2", help="DataLoader worker counts to time, e.g. 1,2,4,8,12."),
    consumption: float = typer.Option(7000.0, help="Audio-s/s one GPU consumes (usad-small + 3 teachers on an H200)."),
    rounds: int = typer.Option(3, help="Interleaved rounds per cell (median kept)."),
    cell_seconds: float = typer.Option(5.0, help="Timed seconds per pipeline cell."),
    out: Path = typer.Option(Path("bench/results"), help="Folder for <date>_<machine>_decode.json and .md."),
):
    """Decode throughput per audio format (Opus, FLAC, PCM16): codec on one core, training DataLoader on N workers."""
    from usad.bench.decode import decode_markdown, run_decode_bench, write_decode_report
    from usad.data.shards import read_manifest

    try:
        counts = tuple(int(w) for w in workers.split(","))
        read_manifest(corpus)
    except ValueError:
        raise typer.BadParameter(f"--workers takes counts like 1,2,4, got {workers!r}") from None
    except FileNotFoundError as err:
        console.print(f"[red]error:[/] {err}")
        raise typer.Exit(2) from None
    record = run_decode_bench(corpus, minutes, counts, consumption, rounds, cell_seconds, log=console.print)
    path = write_decode_report(record, out)
    console.print(decode_markdown(record))
    console.print(f"wrote {path} and {path.with_suffix('.md')}")


@bench_app.command("accuracy-merge")
def accuracy_merge(
    runs: list[Path] = typer.Argument(..., help="accuracy.json files of `usad bench accuracy` runs on the same tasks."),
    out: Path = typer.Option(Path("bench-results/accuracy"), help="Folder for the merged accuracy.json/.md/.png."),
    data: Path = typer.Option(Path("data/tasks"), help="The task audio folder the runs scored."),
):
    """One accuracy report (reference, best teacher, domains) from runs made one model at a time."""
    from usad.bench.accuracy import merge_runs

    try:
        result = merge_runs(runs, out, data)
    except (FileNotFoundError, ValueError, KeyError, json.JSONDecodeError) as err:
        console.print(f"[red]usad bench accuracy-merge: {err}[/]")
        raise typer.Exit(2) from err
    console.print(f"wrote {out}/accuracy.json, accuracy.md, accuracy.png ({len(result['models'])} rows, "
                  f"reference: {result['reference']})")
