"""``usad bench latency`` and ``usad bench all``: registered on the ``bench`` group of ``usad.cli.bench``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from usad.cli.bench import bench_app
from usad.errors import require

console = Console(stderr=True)


def _floats(text: str | None) -> tuple[float, ...] | None:
    return None if text is None else tuple(float(x) for x in text.split(","))


def _ints(text: str | None) -> tuple[int, ...] | None:
    return None if text is None else tuple(int(x) for x in text.split(","))


def _threads(text: str | None) -> tuple[int | None, ...] | None:
    return None if text is None else tuple(None if x == "all" else int(x) for x in text.split(","))


def _grid(quick: bool, full: bool, seconds, batch, threads, formats, rounds, memory, peer=None):
    from usad.bench.latency import FULL, QUICK, Grid, with_overrides
    from usad.bench.runners import ALL_FORMATS

    if quick and full:
        raise typer.BadParameter("--quick and --full exclude each other")
    chosen = tuple(formats.split(",")) if formats else None
    unknown = set(chosen or ()) - set(ALL_FORMATS)
    if unknown:
        raise typer.BadParameter(f"unknown format(s) {sorted(unknown)}; known: {', '.join(ALL_FORMATS)}")
    try:
        base = QUICK if quick else FULL if full else Grid()
        return with_overrides(base, seconds=_floats(seconds), batches=_ints(batch), threads=_threads(threads),
                              formats=chosen, min_rounds=rounds, memory=memory, peer=str(peer) if peer else None)
    except ValueError as err:
        raise typer.BadParameter(f"grid option: {err}") from err


GRID_HELP = {
    "quick": "CI/demo grid: 1 and 10 s, batch 1, eager + ONNX formats, few rounds, no memory probe.",
    "full": "The whole grid: 1/5/10/30 s x batch 1,8 x threads 1,all.",
    "seconds": "Input lengths in seconds, e.g. 1,10 (default 1,5,10,30).",
    "batch": "Batch sizes, e.g. 1,8 (default 1).",
    "threads": "Thread counts, e.g. 1,all (default all).",
    "formats": "Formats, e.g. torch-fp32,onnx-int8 (default: all of the device's).",
    "rounds": "Minimum timed rounds per cell.",
    "memory": "Measure each format's peak RSS in a fresh process.",
}


@bench_app.command()
def latency(
    models: list[str] = typer.Argument(..., help="Model dirs (ONNX files inside are benched too) or preset names."),
    quick: bool = typer.Option(False, "--quick", help=GRID_HELP["quick"]),
    full: bool = typer.Option(False, "--full", help=GRID_HELP["full"]),
    seconds: str = typer.Option(None, help=GRID_HELP["seconds"]),
    batch: str = typer.Option(None, help=GRID_HELP["batch"]),
    threads: str = typer.Option(None, help=GRID_HELP["threads"]),
    formats: str = typer.Option(None, help=GRID_HELP["formats"]),
    rounds: int = typer.Option(None, help=GRID_HELP["rounds"]),
    memory: bool = typer.Option(None, "--memory/--no-memory", help=GRID_HELP["memory"]),
    device: str = typer.Option(None, help="cpu or cuda (default: cuda when available)."),
    out: Path = typer.Option(None, help="Folder for <date>_<machine>_latency.json/.md (default bench/results)."),
    peer: Path = typer.Option(None, exists=True, file_okay=False,
                              help="CTranslate2 Whisper dir from scripts/convert_whisper_ct2.py: its INT8 and fp32 "
                                   "encoder are timed in every cell, as peer rows."),
):
    """Latency x format x input length x batch x threads, with the FLOP floor measured in the same run."""
    require("bench", "usad bench latency")
    from usad.bench.combined_report import latency_markdown
    from usad.bench.harness import RESULTS_DIR, result_stem
    from usad.bench.latency import run_latency, write_model_bench
    from usad.bench.writer import write_report

    grid = _grid(quick, full, seconds, batch, threads, formats, rounds, memory, peer)
    from usad.modeldir import ModelDirError

    try:
        record = run_latency(models, grid, device, log=lambda m: console.print(m, highlight=False))
    except (FileNotFoundError, ModelDirError) as err:
        console.print(f"[red]{err}")
        raise typer.Exit(2) from err
    markdown = latency_markdown(record)
    paths = write_report(out or RESULTS_DIR, result_stem(record, "latency"), record, markdown)
    write_model_bench(record)
    print(markdown)
    console.print("wrote " + ", ".join(str(p) for p in paths.values()))


@bench_app.command("all")
def bench_all(
    models: list[str] = typer.Argument(..., help="Model dirs (and preset names, latency only)."),
    reference: Path = typer.Option(None, help="The full model dir: retention reference, benched alongside."),
    tasks: list[str] = typer.Option(None, "--tasks", help="Only these tasks (repeat the flag); default all."),
    data: Path = typer.Option(Path("data/tasks"), help="Task audio built by `usad data tasks` (built when missing)."),
    seeds: int = typer.Option(5, help="Probe seeds per task."),
    quick: bool = typer.Option(False, "--quick", help=GRID_HELP["quick"]),
    full: bool = typer.Option(False, "--full", help=GRID_HELP["full"]),
    seconds: str = typer.Option(None, help=GRID_HELP["seconds"]),
    batch: str = typer.Option(None, help=GRID_HELP["batch"]),
    threads: str = typer.Option(None, help=GRID_HELP["threads"]),
    formats: str = typer.Option(None, help=GRID_HELP["formats"]),
    rounds: int = typer.Option(None, help=GRID_HELP["rounds"]),
    memory: bool = typer.Option(None, "--memory/--no-memory", help=GRID_HELP["memory"]),
    out: Path = typer.Option(None, help="Report folder (default bench/results)."),
    targets: Path = typer.Option(None, exists=True, dir_okay=False,
                                 help="JSON of limits to mark met or missed (default: the bench's targets.json)."),
):
    """One report: latency + accuracy per model x format, retention vs the reference, Pareto plot."""
    require("bench", "usad bench all")
    from usad.bench.bench_all import run_all
    from usad.bench.combined_report import TARGETS_FILE, headline_markdown, load_targets, targets_markdown
    from usad.bench.harness import RESULTS_DIR
    from usad.modeldir import ModelDirError

    grid = _grid(quick, full, seconds, batch, threads, formats, rounds, memory)
    try:
        report, paths = run_all(models, reference, grid, tasks or None, data, seeds, out or RESULTS_DIR,
                                targets=load_targets(targets or TARGETS_FILE),
                                log=lambda m: console.print(m, highlight=False))
    except (FileNotFoundError, ModelDirError) as err:
        console.print(f"[red]{err}")
        raise typer.Exit(2) from err
    print(headline_markdown(report) + "\n" + targets_markdown(report["targets"]))
    console.print("wrote " + ", ".join(str(p) for p in paths.values()))
    console.print("README table: python scripts/update_readme_results.py")
