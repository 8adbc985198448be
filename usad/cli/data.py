"""``usad data corpus | subset | payload | tasks | check``: the distillation corpus, its scaling subset and
transfer parts, and the labelled task suite."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from usad.cli import app
from usad.errors import require

console = Console(stderr=True)
data_app = typer.Typer(no_args_is_help=True, help="Build the unlabelled corpus and the labelled task suite.")
app.add_typer(data_app, name="data")


def _paths(shared: Path | None):
    from usad.data.sources import SourcePaths

    return SourcePaths(shared=shared) if shared else SourcePaths()


def _fail(err: Exception) -> typer.Exit:
    console.print(f"[red]error:[/] {err}")
    return typer.Exit(1)


def _kbps(values: list[str] | None) -> dict[str, float]:
    """``speech=12`` pairs -> {"speech": 12.0}."""
    out = {}
    for value in values or ():
        domain, sep, rate = value.partition("=")
        try:
            out[domain.strip()] = float(rate)
        except ValueError:
            sep = ""
        if not sep:
            raise typer.BadParameter(f"{value!r}: expected DOMAIN=KBPS, e.g. speech=12", param_hint="--bitrate")
    return out


@data_app.command()
def corpus(
    out: Path = typer.Option(..., help="Output folder for shards and manifest.json."),
    hours_per_domain: float = typer.Option(7.0, help="Hours of speech, of sound and of music."),
    subset: list[str] = typer.Option(None, help="Only these sources (repeat the flag); default all."),
    shard_mb: float = typer.Option(15.0, help="Largest shard size in MiB (every shard holds one domain)."),
    bitrate: list[str] = typer.Option(None, help="Opus bitrate DOMAIN=KBPS (repeat); default speech=12 sound=16 "
                                                 "music=16 kbps."),
    workers: int = typer.Option(2, help="Worker processes for synthesis and Opus encoding."),
    shared: Path = typer.Option(None, help="The shared data folder (default ../shared or $USAD_SHARED)."),
    tasks_dir: Path = typer.Option(None, help="Task manifests to check against (default: the committed ones)."),
    cache: Path = typer.Option(None, help="Finished-jobs folder, to resume a killed build (default OUT/.jobs)."),
):
    """Build the corpus; refused (nothing written) if any task's val/test audio would be in it."""
    require("data", "usad data corpus")
    from usad.data.corpus import build_corpus
    from usad.data.splits import LeakError

    kbps = _kbps(bitrate)
    try:
        manifest = build_corpus(out, hours_per_domain, tuple(subset) if subset else None, _paths(shared), shard_mb,
                                workers, kbps, tasks_dir, cache)
    except (LeakError, ValueError, OSError) as err:
        raise _fail(err) from None
    for problem in manifest["problems"]:
        console.print(f"[yellow]skipped[/] {problem}")
    for domain, info in manifest["domains"].items():
        per_source = ", ".join(f"{k} {v:.2f}" for k, v in info["sources"].items())
        console.print(f"{domain}: {info['hours']:.2f} h, {info['real_hours']:.2f} h real ({per_source})")
    sizes = [s["bytes"] / 2**20 for s in manifest["shards"]]
    console.print(f"{manifest['hours']:.2f} h in {len(sizes)} shards ({sum(sizes):.1f} MiB, "
                  f"largest {max(sizes, default=0):.1f} MiB); no task val/test audio in it")


@data_app.command("subset")
def subset_cmd(
    corpus_dir: Path = typer.Argument(..., help="A built corpus folder."),
    out: Path = typer.Option(..., help="Folder for the subset's manifest.json (and its shards with --repack)."),
    hours: float = typer.Option(2.0, help="Total hours, split equally over the domains."),
    repack: bool = typer.Option(False, help="Copy the leading clips into new shards (finer than whole shards)."),
):
    """A smaller corpus of a built one, for the data-scaling point: whole shards, or its leading clips repacked."""
    from usad.data.subset import build_subset

    try:
        manifest = build_subset(corpus_dir, out, hours, repack)
    except (ValueError, OSError) as err:
        raise _fail(err) from None
    per_domain = ", ".join(f"{d} {info['hours']:.2f} h" for d, info in manifest["domains"].items())
    console.print(f"{manifest['hours']:.2f} h in {len(manifest['shards'])} shards ({per_domain})")


@data_app.command()
def payload(
    corpora: list[Path] = typer.Argument(..., help="Corpus folders; the first listed goes first (the subset)."),
    out: Path = typer.Option(..., help="Folder for part1..partN."),
    part_mib: float = typer.Option(52.0, help="Largest part in MiB."),
):
    """Split corpora into transfer parts of whole shard files (part1 also carries the manifests)."""
    from usad.data.payload import make_payload

    try:
        listing = make_payload(corpora, out, part_mib)
    except (ValueError, OSError) as err:
        raise _fail(err) from None
    for part in listing["parts"]:
        console.print(f"{part['part']}: {part['bytes'] / 2**20:.1f} MiB, {len(part['files'])} files")


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
    from usad.data.splits import LeakError, check_disjoint
    from usad.data.tasks import held_out_tokens

    try:
        bad = verify_shards(corpus_dir)
        if bad:
            console.print(f"[red]shards differ from manifest.json:[/] {bad}")
            raise typer.Exit(1)
        check_disjoint(set(read_manifest(corpus_dir)["source_tokens"]), held_out_tokens(tasks_dir))
    except (LeakError, OSError) as err:
        raise _fail(err) from None
    console.print(json.dumps({"shards": "ok", "held_out_overlap": 0}))


@data_app.command()
def transcode(
    src: Path = typer.Argument(..., help="A corpus folder (manifest.json and its shards)."),
    to: str = typer.Option(..., "--to", help="flac (lossless, ~8x faster to decode than Opus) or pcm16 (16-bit WAV)."),
    out: Path = typer.Option(..., "--out", help="Output folder for the transcoded shards and manifest.json."),
    workers: int = typer.Option(None, help="Worker processes (default: all cores)."),
):
    """Rewrite a corpus's shards in another audio format (same clips and metadata; sha256 re-recorded)."""
    from usad.data.transcode import TranscodeError, transcode_corpus

    try:
        manifest = transcode_corpus(src, to, out, workers)
    except (TranscodeError, FileNotFoundError) as err:
        console.print(f"[red]error:[/] {err}")
        raise typer.Exit(2) from None
    size = sum(s["bytes"] for s in manifest["shards"]) / 1e6
    skipped = sum(s.get("skipped", 0) for s in manifest["shards"])
    console.print(f"{len(manifest['shards'])} shards in {out} ({size:.1f} MB, {to}); "
                  f"{skipped} undecodable clips skipped")
