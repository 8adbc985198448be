"""``usad bench stream``: per-chunk compute, RTF and hour-long memory of a streaming export."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from usad.cli.bench import bench_app

console = Console(stderr=True)


@bench_app.command("stream")
def stream(
    model_dir: Path = typer.Argument(..., help="A streaming model dir exported with `usad export --stream --int8`."),
    formats: str = typer.Option("int8,fp32", help="Streaming exports to time: int8, fp32 or both."),
    threads: str = typer.Option("1,2", help="ONNX Runtime thread counts, e.g. 1,2."),
    seconds: float = typer.Option(120.0, help="Audio per (format, threads) row for the chunk timings."),
    memory_seconds: float = typer.Option(3600.0, help="Length of the memory run (0: skip it)."),
    out: Path = typer.Option(None, help="Folder for <date>_<machine>_stream.json/.md (default bench/results)."),
) -> None:
    """Time a streaming export chunk by chunk (interleaved) and check its memory stays flat over an hour."""
    from usad.bench.harness import RESULTS_DIR, result_stem
    from usad.bench.streaming import run_stream_bench, stream_markdown
    from usad.bench.writer import write_report
    from usad.modeldir import ModelDirError

    chosen = tuple(formats.split(","))
    if not set(chosen) <= {"int8", "fp32"}:
        raise typer.BadParameter(f"--formats takes int8 and/or fp32, got {formats!r}")
    try:
        counts = tuple(int(t) for t in threads.split(","))
    except ValueError:
        raise typer.BadParameter(f"--threads takes counts like 1,2, got {threads!r}") from None
    if seconds <= 0 or memory_seconds < 0 or min(counts) < 1:
        raise typer.BadParameter("--seconds must be > 0, --memory-seconds >= 0 and thread counts >= 1")
    try:
        record = run_stream_bench(model_dir, chosen, counts, seconds, memory_seconds or None,
                                  log=lambda m: console.print(m, highlight=False))
    except (FileNotFoundError, ModelDirError) as err:
        console.print(f"[red]{err}", soft_wrap=True)
        raise typer.Exit(2) from err
    markdown = stream_markdown(record)
    paths = write_report(out or RESULTS_DIR, result_stem(record, "stream"), record, markdown)
    print(markdown)
    console.print("wrote " + ", ".join(str(p) for p in paths.values()))
    memory = record.get("memory")
    if memory and not memory.get("flat", False):
        console.print(f"[red]memory is not flat over the stream: {memory}", soft_wrap=True)
        raise typer.Exit(1)
