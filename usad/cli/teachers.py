"""``usad teachers prepare NAME --out DIR``: registry-package weights to safetensors, once."""

from __future__ import annotations

from pathlib import Path

import typer

from usad.cli import app
from usad.config import SAMPLE_RATE
from usad.errors import require

teachers_app = typer.Typer(no_args_is_help=True, help="Prepare and inspect distillation teachers.")
app.add_typer(teachers_app, name="teachers")


@teachers_app.command("prepare")
def prepare_command(
    name: str = typer.Argument(..., help="aisfx, crepe-tiny, crepe-full or basic-pitch"),
    out: Path = typer.Option(..., "--out", "-o", help="directory to write model.safetensors/teacher.json into"),
) -> None:
    """Extract a teacher's weights from its installed package (pickles converted with weights_only)."""
    require("train", "usad teachers prepare")
    from usad.teachers import prepare

    typer.echo(f"prepared {name} in {prepare(name, out)}")


@teachers_app.command("info")
def info_command(
    spec: str = typer.Argument(..., help="e.g. whisper:DIR, aisfx:DIR, hf:DIR, usad:MODEL_DIR"),
    seconds: float = typer.Option(2.0, help="length of the silent probe input"),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="allow usad-hf: remote code"),
) -> None:
    """Load a teacher and print its layers (width, frames) on a probe input."""
    require("train", "usad teachers info")
    import torch

    from usad.teachers import load_teacher

    teacher = load_teacher(spec, trust_remote_code=trust_remote_code)
    samples = int(seconds * SAMPLE_RATE)
    out = teacher(torch.zeros(1, samples), torch.tensor([samples]))
    rate = "clip-level" if out.frame_rate is None else f"{out.frame_rate:.3f} frames/s"
    typer.echo(f"{spec}: {len(out.layers)} layers, {rate}")
    for i, layer in enumerate(out.layers):
        typer.echo(f"  layer {i}: {tuple(layer.shape)}")
