"""``usad distill``: train a student from teachers. Multi-GPU: ``torchrun --nproc_per_node N -m usad.distill``."""

from __future__ import annotations

from pathlib import Path

import typer

from usad.cli import app
from usad.errors import require


@app.command("distill")
def distill_command(
    config: Path = typer.Option(..., "--config", "-c", exists=True, dir_okay=False, help="YAML recipe (configs/)"),
    out: Path = typer.Option(..., "--out", "-o", help="run directory: checkpoint, resume pack, logs, model/"),
    overrides: list[str] = typer.Option(None, "--set", help="override a recipe key, e.g. train.lr=3e-4"),
    resume: bool = typer.Option(False, "--resume", help="continue from OUT/checkpoint.pt, else OUT/resume-pack"),
) -> None:
    """Distill a USAD student from frozen speech, sound and music teachers (exit 75: stopped by SIGTERM)."""
    require("train", "usad distill")
    from usad.distill import distill, load_recipe
    from usad.distill.launch import run_training

    raise typer.Exit(run_training(lambda: distill(load_recipe(config, overrides or []), out, resume)))
