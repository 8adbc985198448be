"""``usad bench latency`` and ``usad bench all``: registered on the ``bench`` group of ``usad.cli.bench``."""

from __future__ import annotations

import functools
import inspect
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from usad.cli.bench import bench_app
from usad.errors import require

console = Console(stderr=True)


def _floats(text: str | None) -> tuple[float, ...] | None:
    return None if text is None else tuple(float(x) for x in text.split(","))


def _ints(text: str | None) -> tuple[int, ...] | None:
    return None if text is None else tuple(int(x) for x in text.split(","))


def _threads(text: str | None) -> tuple[int | None, ...] | None:
    return None if text is None else tuple(None if x == "all" else int(x) for x in text.split(","))


def _grid(quick: bool, full: bool, seconds, batch, threads, formats, rounds, memory):
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
                              formats=chosen, min_rounds=rounds, memory=memory)
    except ValueError as err:
        raise typer.BadParameter(f"grid option: {err}") from err


# The latency grid's options, shared by the commands that time models (name -> type and typer option).
GRID_OPTIONS = {
    "quick": (bool, typer.Option(False, "--quick", help="CI/demo grid: 1 and 10 s, batch 1, eager + ONNX formats, "
                                                          "few rounds, no memory probe.")),
    "full": (bool, typer.Option(False, "--full", help="The whole grid: 1/5/10/30 s x batch 1,8 x threads 1,all.")),
    "seconds": (str, typer.Option(None, help="Input lengths in seconds, e.g. 1,10 (default 1,5,10,30).")),
    "batch": (str, typer.Option(None, help="Batch sizes, e.g. 1,8 (default 1).")),
    "threads": (str, typer.Option(None, help="Thread counts, e.g. 1,all (default all).")),
    "formats": (str, typer.Option(None, help="Formats, e.g. torch-fp32,onnx-int8 (default: all of the device's).")),
    "rounds": (int, typer.Option(None, help="Minimum timed rounds per cell.")),
    "memory": (bool, typer.Option(None, "--memory/--no-memory", help="Measure each format's peak RSS in a fresh "
                                                                     "process.")),
}


def with_grid_options(command):
    """A command taking ``grid`` gets the ``GRID_OPTIONS`` on its command line instead, parsed into one Grid."""
    signature = inspect.signature(command)
    own = [p for name, p in signature.parameters.items() if name != "grid"]
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)
              for name, (annotation, option) in GRID_OPTIONS.items()]

    @functools.wraps(command)
    def wrapper(**kwargs):
        grid = _grid(*(kwargs.pop(name) for name in GRID_OPTIONS))
        return command(grid=grid, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
                                                          for p in own] + shared)
    return wrapper


@bench_app.command()
@with_grid_options
def latency(
    grid,
    models: list[str] = typer.Argument(..., help="Model dirs (ONNX files inside are benched too) or preset names."),
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
    from usad.bench.latency import run_latency, with_overrides, write_model_bench
    from usad.bench.writer import write_report
    from usad.modeldir import ModelDirError

    grid = with_overrides(grid, peer=str(peer) if peer else None)

    try:
        record = run_latency(models, grid, device, log=lambda m: console.print(m, highlight=False))
    except (FileNotFoundError, ModelDirError) as err:
        console.print(f"[red]{escape(str(err))}")
        raise typer.Exit(2) from err
    markdown = latency_markdown(record)
    paths = write_report(out or RESULTS_DIR, result_stem(record, "latency"), record, markdown)
    write_model_bench(record)
    print(markdown)
    console.print("wrote " + ", ".join(str(p) for p in paths.values()))


@bench_app.command("all")
@with_grid_options
def bench_all(
    grid,
    models: list[str] = typer.Argument(..., help="Model dirs (and preset names, latency only)."),
    reference: Path = typer.Option(None, help="The full model dir: retention reference, benched alongside."),
    tasks: list[str] = typer.Option(None, "--tasks", help="Only these tasks (repeat the flag); default all."),
    data: Path = typer.Option(Path("data/tasks"), help="Task audio built by `usad data tasks` (built when missing)."),
    seeds: int = typer.Option(5, help="Probe seeds per task."),
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

    try:
        report, paths = run_all(models, reference, grid, tasks or None, data, seeds, out or RESULTS_DIR,
                                targets=load_targets(targets or TARGETS_FILE),
                                log=lambda m: console.print(m, highlight=False))
    except (FileNotFoundError, ModelDirError) as err:
        console.print(f"[red]{escape(str(err))}")
        raise typer.Exit(2) from err
    print(headline_markdown(report) + "\n" + targets_markdown(report["targets"]))
    console.print("wrote " + ", ".join(str(p) for p in paths.values()))
    console.print("README table: python scripts/update_readme_results.py")
