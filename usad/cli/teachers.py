"""``usad teachers prepare|convert|untrained|info``: teacher weights to safetensors once, and a look at them."""

from __future__ import annotations

from pathlib import Path

import typer

from usad.cli import app
from usad.config import SAMPLE_RATE
from usad.errors import require

teachers_app = typer.Typer(no_args_is_help=True, help="Prepare and inspect distillation teachers.")
app.add_typer(teachers_app, name="teachers")
OUT = typer.Option(..., "--out", "-o", help="directory to write model.safetensors and teacher.json into")


@teachers_app.command("prepare")
def prepare_command(name: str = typer.Argument(..., help="aisfx, crepe-tiny, crepe-full or basic-pitch"),
                    out: Path = OUT) -> None:
    """Extract a teacher's weights from its installed package (pickles converted with weights_only)."""
    require("train", "usad teachers prepare")
    from usad.teachers import prepare

    typer.echo(f"prepared {name} in {prepare(name, out)}")


@teachers_app.command("convert")
def convert_command(
    kind: str = typer.Argument(..., help="atst-frame (audiossl's atstframe_base.ckpt) or beats (BEATs_iter3.pt)"),
    checkpoint: Path = typer.Argument(..., help="the official checkpoint file, as downloaded"),
    out: Path = OUT,
) -> None:
    """Convert an official ATST-Frame or BEATs checkpoint once, weights-only, into a teacher directory."""
    require("train", "usad teachers convert")
    from usad.teachers.convert import convert

    typer.echo(f"converted {checkpoint} into {convert(kind, checkpoint, out)} (spec: {kind}:{out})")


@teachers_app.command("untrained")
def untrained_command(
    name: str = typer.Argument(..., help="wavlm-base-plus, atst-frame-base, atst-frame-small or beats-iter3"),
    out: Path = OUT,
    seed: int = typer.Option(0, help="initialisation seed"),
) -> None:
    """Write a randomly initialised teacher of a published architecture (tests, throughput runs)."""
    require("train", "usad teachers untrained")
    from usad.teachers.untrained import NAMES, write_untrained

    path = write_untrained(name, out, seed)
    typer.echo(f"wrote untrained {name} to {path} (spec: {NAMES[name]}:{path})")


@teachers_app.command("info")
def info_command(
    spec: str = typer.Argument(..., help="e.g. whisper:DIR, aisfx:DIR, hf:DIR, atst-frame:DIR, usad:MODEL_DIR"),
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
    params = sum(p.numel() for p in teacher.parameters())
    typer.echo(f"{spec}: {len(out.layers)} layers, {rate}, {params / 1e6:.2f} M parameters")
    for i, layer in enumerate(out.layers):
        typer.echo(f"  layer {i}: {tuple(layer.shape)}")
