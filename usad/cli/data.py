"""``usad data corpus | tasks | check``: build the distillation corpus and the labelled task suite."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from usad.cli import app

console = Console(stderr=True)
data_app = typer.Typer(no_args_is_help=True, help="Build the unlabelled corpus and the labelled task suite.")
app.add_typer(data_app, name="data")


def _paths(shared: Path | None):
    from usad.data.sources import SourcePaths

    return SourcePaths(shared=shared) if shared else SourcePaths()


@data_app.command()
def corpus(
    out: Path = typer.Option(..., help="Output folder for shards and manifest.json."),
    hours_per_domain: float = typer.Option(7.0, help="Hours of speech, of sound and of music."),
    subset: list[str] = typer.Option(None, help="Only these sources (repeat the flag); default all."),
    shard_mb: float = typer.Option(48.0, help="Largest shard size in MB."),
    workers: int = typer.Option(2, help="Worker processes for synthesis and Opus encoding."),
    shared: Path = typer.Option(None, help="The shared data folder (default ../shared or $USAD_SHARED)."),
    tasks_dir: Path = typer.Option(None, help="Task manifests to check against (default: the committed ones)."),
):
    """Build the corpus, then check that no task's val/test audio is in it."""
    from usad.data.corpus import build_corpus
    from usad.data.splits import check_disjoint
    from usad.data.tasks import held_out_tokens

    manifest = build_corpus(out, hours_per_domain, tuple(subset) if subset else None, _paths(shared), shard_mb, workers)
    check_disjoint(set(manifest["source_tokens"]), held_out_tokens(tasks_dir))
    for problem in manifest["problems"]:
        console.print(f"[yellow]skipped[/] {problem}")
    for domain, info in manifest["domains"].items():
        per_source = ", ".join(f"{k} {v:.2f}" for k, v in info["sources"].items())
        console.print(f"{domain}: {info['hours']:.2f} h ({per_source})")
    sizes = [s["bytes"] / 1e6 for s in manifest["shards"]]
    console.print(f"{manifest['hours']:.2f} h in {len(sizes)} shards ({sum(sizes):.1f} MB, "
                  f"largest {max(sizes, default=0):.1f} MB); no task val/test audio in it")


@data_app.command()
def tasks(
    out: Path = typer.Option(..., help="Output folder: <task>/*.flac (conditions in <task>/<condition>/) and "
                                       "<task>.json per task."),
    task: list[str] = typer.Option(None, help="Only these tasks (repeat the flag); default T1-T10."),
    regenerate: bool = typer.Option(False, help="Derive manifests from the sources instead of the committed ones."),
    limit_per_split: int = typer.Option(None, min=1, help="Keep N rows per (split, label): a quick subset."),
    shared: Path = typer.Option(None, help="The shared data folder (default ../shared or $USAD_SHARED)."),
    noisy: bool = typer.Option(True, help="Also build the val/test clips mixed with interference (5 and 0 dB)."),
    train_mixtures: bool = typer.Option(False, help="Also mix the training clips (for --train-noisy probes)."),
):
    """Rebuild the task audio from the committed manifests and check every clip's sha256."""
    from usad.data.tasks import build_tasks

    try:
        report = build_tasks(out, task or None, _paths(shared), regenerate, limit_per_split, noisy=noisy,
                             train_mixtures=train_mixtures)
    except (ValueError, FileNotFoundError, OSError) as err:
        console.print(f"[red]usad data tasks: {err}[/]")
        raise typer.Exit(2) from err
    for name, info in report.items():
        if info["missing"]:
            console.print(f"[yellow]{name}: skipped: {info['missing']}[/]")
            continue
        console.print(f"{name}: {info['rows']} clips, {len(info['problems'])} problems")
        for problem in info["problems"][:10]:
            console.print(f"  [yellow]{problem}[/]")
    if any(info["missing"] or not info["rows"] for info in report.values()):
        raise typer.Exit(1)


@data_app.command()
def check(
    corpus_dir: Path = typer.Argument(..., help="A built corpus folder."),
    tasks_dir: Path = typer.Option(None, help="Task manifests (default: the committed ones)."),
):
    """Verify shard hashes and that the corpus holds no task val/test audio."""
    from usad.data.shards import read_manifest, verify_shards
    from usad.data.splits import check_disjoint
    from usad.data.tasks import held_out_tokens

    bad = verify_shards(corpus_dir)
    if bad:
        console.print(f"[red]shards differ from manifest.json:[/] {bad}")
        raise typer.Exit(1)
    check_disjoint(set(read_manifest(corpus_dir)["source_tokens"]), held_out_tokens(tasks_dir))
    console.print(json.dumps({"shards": "ok", "held_out_overlap": 0}))
