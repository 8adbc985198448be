"""``usad compress``: distill a trained full model into a smaller preset (the full model is the teacher)."""

from __future__ import annotations

from pathlib import Path

import typer

from usad.cli import app
from usad.errors import require


@app.command("compress")
def compress_command(
    teacher: Path = typer.Option(..., "--teacher", "-t", exists=True, file_okay=False,
                                 help="model dir of the trained full model"),
    preset: str = typer.Option(..., "--preset", "-p", help="student preset, e.g. usad-tiny (usad info lists them)"),
    out: Path = typer.Option(..., "--out", "-o", help="run directory: checkpoint, logs, model/"),
    config: Path = typer.Option(None, "--config", "-c", exists=True, dir_okay=False,
                                help="recipe in usad distill format, teachers left out (configs/compress.yaml)"),
    frame_rate: int = typer.Option(None, "--frame-rate", help="student frame rate, 50 or 25 Hz"),
    init: str = typer.Option("every-kth", "--init", help="fresh | every-kth | importance (default: measured, "
                             "see usad.compress.init)"),
    pairs: str = typer.Option(None, "--pairs", help="distilled layer pairs: 'all' (one per student layer) or K"),
    overrides: list[str] = typer.Option(None, "--set", help="override a recipe key, e.g. train.max_steps=500"),
    resume: bool = typer.Option(False, "--resume", help="continue from OUT/checkpoint.pt"),
) -> None:
    """Compress a trained USAD model into a smaller preset with the distillation trainer (exit 75: SIGTERM)."""
    require("train", "usad compress")
    from usad.compress import CompressInitError, compress
    from usad.distill.launch import run_training

    raise typer.Exit(run_training(lambda: compress(teacher, preset, out, config, frame_rate, init, pairs,
                                                   overrides or [], resume), bad_input=(CompressInitError,)))
