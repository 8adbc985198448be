"""``usad convert DIR --out OUT``: an official MIT-SLS USAD checkpoint onto our usad-small / base / large."""

from __future__ import annotations

from pathlib import Path

import typer

from usad.cli import app
from usad.errors import require


@app.command("convert")
def convert_command(
    checkpoint: Path = typer.Argument(..., help="downloaded MIT-SLS/USAD-Small|Base|Large directory "
                                                "(config.json + model.safetensors)"),
    out: Path = typer.Option(..., "--out", "-o", help="model directory to write (config.json + weights)"),
) -> None:
    """Map an official USAD checkpoint onto a usad-* model dir, without its remote code (docs/paper.md)."""
    require("train", "usad convert")
    from usad.teachers.usad_official import convert_official

    typer.echo(f"converted {checkpoint} into {convert_official(checkpoint, out)}")
