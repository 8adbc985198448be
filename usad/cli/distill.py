"""``usad distill``: train a student from teachers. Multi-GPU: ``torchrun --nproc_per_node N -m usad.distill``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from usad.cli import app
from usad.errors import require


@app.command("distill")
def distill_command(
    config: Path = typer.Option(..., "--config", "-c", exists=True, dir_okay=False, help="YAML recipe (configs/)"),
    out: Path = typer.Option(..., "--out", "-o", help="run directory: checkpoint, logs, model/"),
    overrides: list[str] = typer.Option(None, "--set", help="override a recipe key, e.g. train.lr=3e-4"),
    resume: bool = typer.Option(False, "--resume", help="continue from OUT/checkpoint.pt"),
) -> None:
    """Distill a USAD student from frozen speech, sound and music teachers."""
    require("train", "usad distill")
    from usad.distill import distill, load_config

    model_dir = distill(load_config(config, overrides or []), out, resume=resume)
    if model_dir is not None:
        typer.echo(f"model dir: {model_dir}")


def run_from_argv() -> None:
    """Entry for ``python -m usad.distill`` (torchrun): the distill command alone."""
    import typer.main

    command = typer.main.get_command(app)
    command.main(["distill", *sys.argv[1:]], prog_name="usad.distill")
