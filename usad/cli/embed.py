"""``usad embed`` and ``usad info``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from usad.cli import app

console = Console(stderr=True)


def _parse_layers(layer: str) -> list[int] | None:
    if layer == "all":
        return None
    try:
        return [int(x) for x in layer.split(",")]
    except ValueError as err:
        raise typer.BadParameter(f"--layer takes 'all' or layer numbers like 12 or 4,8,12, got {layer!r}") from err


@app.command()
def embed(
    inputs: list[str] = typer.Argument(..., help="[MODEL] AUDIO...: a model dir or .onnx first, else the "
                                                 "packaged default model is used."),
    layer: str = typer.Option("all", help="'all', a layer index (0 = positional encoder output, -1 = last) "
                                          "or a comma list."),
    pool: str = typer.Option("mean", help="'mean' over frames -> (layers, D), or 'none' -> (layers, T, D)."),
    out: Path = typer.Option(Path("embeddings.npz"), help="Output .npz: one array per input path."),
    batch_seconds: float = typer.Option(60.0, help="Padded audio per batch for short files."),
    chunk_seconds: float = typer.Option(30.0, help="Longer files stream through windows of this core size."),
    device: str = typer.Option("cpu", help="Torch device for model dirs without ONNX."),
    threads: int = typer.Option(0, help="CPU threads (0: library default)."),
) -> None:
    """Embed audio files (any format soundfile reads, any rate or channel count)."""
    from usad.backends import is_model_path, open_backend
    from usad.embed import Windowing, embed_files
    from usad.runtime import default_model_dir

    model, paths = (inputs[0], inputs[1:]) if is_model_path(inputs[0]) else (default_model_dir(), inputs)
    if not paths:
        raise typer.BadParameter("no audio files given")
    backend = open_backend(model, device=device, threads=threads or None)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} files"),
                  TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task("embedding", total=len(paths))
        result = embed_files(backend, paths, _parse_layers(layer), pool, batch_seconds, Windowing(chunk_seconds),
                             on_progress=lambda path, seconds: progress.advance(task))
    if result.embeddings:
        np.savez(out, **result.embeddings)
        console.print(f"[green]{len(result.embeddings)} embeddings ({result.seconds:.1f} s of audio) -> {out}")
    if result.errors:
        table = Table("file", "error", title=f"{len(result.errors)} file(s) failed")
        for path, message in result.errors.items():
            table.add_row(path, message)
        console.print(table)
        raise typer.Exit(1)


@app.command()
def info(model: Path = typer.Argument(..., help="Model directory.")) -> None:
    """Config, parameters, GFLOPs per second of audio, frame rate and files of a model dir."""
    from usad.model import count_parameters
    from usad.modeldir import load, read_config

    config = read_config(model)
    encoder = load(model)
    table = Table(title=str(model), show_header=False)
    table.add_row("variant", str(config.get("variant")))
    for key, value in config["encoder"].items():
        table.add_row(key, str(value))
    table.add_row("parameters", f"{count_parameters(encoder) / 1e6:.2f} M")
    table.add_row("GFLOPs / s audio", f"{encoder.gflops_per_second():.3f}")
    table.add_row("files", ", ".join(sorted(p.name for p in model.iterdir())))
    for key in ("distillation", "compression", "export"):
        if key in config:
            table.add_row(key, json.dumps(config[key])[:200])
    Console().print(table)
