"""``usad embed`` and ``usad info``: parse, check everything that can be checked before computing, then call
``usad.dataset`` (a folder of Parquet shards) or ``usad.embed.iter_sources`` (one .npz). A mistake in the
arguments, the model or the output is one line on stderr and exit code 2; files that fail to decode are
listed at the end with exit code 1, after everything else was written."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from usad.cli import app
from usad.dataset.inputs import AUDIO_EXTENSIONS
from usad.errors import InputError

console = Console(stderr=True, soft_wrap=True)
SHOWN_ERRORS = 20  # failed files listed on screen; all of them are in the output's error list


class PoolChoice(str, Enum):
    mean = "mean"
    none = "none"


def _parse_layers(layer: str) -> list[int] | None:
    if layer == "all":
        return None
    try:
        return [int(x) for x in layer.split(",")]
    except ValueError as err:
        raise InputError(f"--layer takes 'all' or hidden-state numbers like 6, -1 or 2,4,6; got {layer!r}") from err


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean a bad argument, input, model or output: shown as one line, never a traceback.
    ``UsadError`` covers the package's own; ModelDirError is listed once usad.modeldir is loaded (it needs
    torch, which a runtime install lacks); ValueError and OSError come from numpy, soundfile and the OS."""
    from usad.errors import UsadError
    from usad.runtime import RuntimeModelError

    errors: list[type[BaseException]] = [UsadError, ValueError, OSError, RuntimeModelError, ImportError]
    if "usad.modeldir" in sys.modules:
        errors.append(sys.modules["usad.modeldir"].ModelDirError)
    return tuple(errors)


def _fail(message: object, code: int = 2) -> typer.Exit:
    console.print(f"[red]error:[/] {escape(str(message))}", markup=True)
    return typer.Exit(code)


def _progress(total: int) -> tuple[Progress, Callable[[int, float], None]]:
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
                   TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(), console=console)
    task = bar.add_task("embedding", total=total, rate="")
    started, audio = time.perf_counter(), [0.0]

    def advance(files: int, seconds: float) -> None:
        audio[0] += seconds
        elapsed = max(time.perf_counter() - started, 1e-9)
        done = bar.tasks[0].completed + files
        bar.update(task, advance=files, rate=f"{done / elapsed:.1f} files/s, {audio[0] / elapsed:.0f} audio-s/s")

    return bar, advance


def _report_errors(errors: dict[str, str], where: str) -> None:
    table = Table("file", "error", title=f"{len(errors)} file(s) failed{where}")
    for key, message in list(errors.items())[:SHOWN_ERRORS]:
        table.add_row(key, message)
    console.print(table)
    if len(errors) > SHOWN_ERRORS:
        console.print(f"... and {len(errors) - SHOWN_ERRORS} more{where}")


@app.command()
def embed(
    inputs: list[str] = typer.Argument(..., help="[MODEL] INPUT...: a model dir or .onnx first, else the packaged "
                                                 "default model. Inputs: audio files, folders (recursive), globs, "
                                                 "manifests (.txt one path a line; .csv/.tsv/.jsonl with a 'path' "
                                                 "column) and WebDataset .tar shards."),
    out: Path = typer.Option(Path("embeddings.npz"), help="x.npz: one file, arrays keyed by path. A folder (no "
                                                          "extension): Parquet shards, resumable, for datasets."),
    layer: str = typer.Option("all", help="'all', a hidden-state number (0 = positional encoder output, -1 = last) "
                                          "or a comma list."),
    pool: PoolChoice = typer.Option(PoolChoice.mean, help="'mean' over frames -> (layers, D); 'none' -> frames "
                                                          "(layers, T, D), with frame times in Parquet."),
    workers: int = typer.Option(1, min=1, help="Worker processes, each with its own session (folder output)."),
    threads: int = typer.Option(0, min=0, help="Threads per worker (0: the cores shared out among workers)."),
    shard_size: int = typer.Option(1000, min=1, help="Inputs per Parquet shard: the unit of resume and of work."),
    rank: int = typer.Option(-1, help="This process' rank of --world (default: Slurm array / torchrun env, else 0)."),
    world: int = typer.Option(0, min=0, help="Processes sharing the run; each embeds every world-th shard."),
    overwrite: bool = typer.Option(False, help="Replace a folder that holds another run."),
    npy_dir: Path = typer.Option(None, help="Also write one .npy per input, mirroring the input tree here."),
    ext: str = typer.Option(",".join(AUDIO_EXTENSIONS), help="Audio extensions taken from folders and shards."),
    batch_seconds: float = typer.Option(60.0, min=1.0, help="Padded audio per batch of short files (larger on GPU)."),
    chunk_seconds: float = typer.Option(30.0, help="Files longer than this stream through windows of this core."),
    device: str = typer.Option("cpu", help="Torch device for model dirs without ONNX."),
    prefer: str = typer.Option(None, help="fp32 or int8: which ONNX file of a model dir to run."),
) -> None:
    """Embed audio (any format soundfile reads, any rate or channel count) into .npz or Parquet shards."""
    from usad.backends import BackendSpec, split_model_argument
    from usad.dataset.outputs import check_output
    from usad.embed import Windowing
    from usad.runtime import default_model_dir

    try:
        model, specs, defaulted = split_model_argument(inputs, default_model_dir())
        if not specs:
            raise InputError("no audio inputs given (usage: usad embed [MODEL] INPUT...)")
        output = check_output(out)
        if output.kind == "npz" and (workers > 1 or world > 1 or npy_dir):
            raise InputError("--workers, --world and --npy-dir need a folder output (--out DIR): an .npz is "
                             "written by one process")
        windowing = Windowing(chunk_seconds)
        layers = _parse_layers(layer)
        spec = BackendSpec(str(model), device, threads or None, prefer)
        console.print(f"model: {model}" + (" (the packaged default; pass a model dir first to use another)"
                                           if defaulted else ""))
        extensions = tuple(e.strip() for e in ext.split(",") if e.strip())
        if output.kind == "npz":
            _embed_npz(spec, specs, output, layers, pool.value, batch_seconds, windowing, extensions)
        else:
            _embed_folder(spec, specs, output, layers, pool.value, batch_seconds, windowing, extensions,
                          workers, shard_size, rank, world, overwrite, npy_dir)
    except _user_errors() as err:
        raise _fail(err) from None


def _embed_npz(spec, specs, output, layers, pool, batch_seconds, windowing, extensions) -> None:
    from usad.dataset.inputs import expand_inputs, open_source
    from usad.dataset.outputs import NpzWriter
    from usad.embed import iter_sources

    items = expand_inputs(specs, extensions)
    backend = spec.open()
    if output.replaces:
        console.print(f"replacing {output.path} when done")
    errors: dict[str, str] = {}
    seconds = 0.0
    bar, advance = _progress(len(items))
    with bar, NpzWriter(output.path) as writer:
        for clip in iter_sources(backend, map(open_source, items), layers, pool, batch_seconds, windowing):
            if clip.error is not None:
                errors[clip.key] = clip.error
            else:
                writer.add(clip.key, clip.embedding)
                seconds += clip.seconds
            advance(1, clip.seconds)
    if writer.count:
        console.print(f"{writer.count} embeddings ({seconds:.1f} s of audio) -> {output.describe()}")
    else:
        console.print("nothing written: every input failed"
                      f"{f' ({output.path} from before is left as it was)' if output.replaces else ''}")
    if errors:
        _report_errors(errors, "")
        raise typer.Exit(1)


def _embed_folder(spec, specs, output, layers, pool, batch_seconds, windowing, extensions, workers, shard_size,
                  rank, world, overwrite, npy_dir) -> None:
    from usad.dataset import DatasetRun
    from usad.dataset.run import ERRORS_FILE, rank_from_env

    if world == 0:
        rank, world = rank_from_env() if rank < 0 else (rank, 1)
    rank = max(rank, 0)
    run = DatasetRun(spec, specs, output.path, layers, pool, batch_seconds, windowing, shard_size, workers, rank,
                     world, overwrite, npy_dir, extensions)
    where = f" (rank {rank} of {world})" if world > 1 else ""
    resumed = f", resuming: {len(run.shards) - len(run.todo)} of {len(run.shards)} shards done" if run.resumed else ""
    console.print(f"{len(run.items)} inputs in {run.folder.count} shards{where} -> {output.describe()}{resumed}")
    bar, advance = _progress(run.files_todo)
    try:
        with bar:
            summary = run.run(advance)
    except KeyboardInterrupt:
        raise _fail("interrupted; the shards written are kept: rerun the same command to resume", 130) from None
    except Exception as err:  # a worker died (killed, out of memory) or a backend failed on a shard
        raise _fail(f"{type(err).__name__}: {err}; the shards written are kept: rerun the same command to resume",
                    1) from None
    console.print(f"{summary['ok']} embedded ({summary['seconds']:.1f} s of audio) in "
                  f"{summary['shards_done']} of {summary['shards']} shards -> {output.path}/")
    if summary["errors"]:
        _report_errors(summary["errors"], f", all listed in {output.path / ERRORS_FILE}")
        raise typer.Exit(1)


@app.command()
def info(model: Path = typer.Argument(..., help="Model directory or .onnx file.")) -> None:
    """Config, parameters, GFLOPs per second of audio, and each ONNX file of a model (torch weights or ONNX only)."""
    from usad.model_info import describe

    try:
        rows = describe(model)
    except _user_errors() as err:
        raise _fail(err) from None
    table = Table(title=str(model), show_header=False)
    for key, value in rows:
        table.add_row(key, value)
    Console().print(table)
