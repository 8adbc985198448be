"""Decode throughput of training shards: how many CPU workers feed one GPU, per audio format.

    usad bench decode CORPUS [--minutes 10] [--workers 1,2] [--consumption 7000] [--out bench/results]

From CORPUS (any format) the bench takes whole shards, round-robin over domains, up to ``--minutes`` of
audio, and transcodes them to Opus-as-given, FLAC and 16-bit PCM in a scratch folder (usad.data.transcode).
For every format it measures, in interleaved rounds (format order rotated each round, median kept):

- ``codec``: one core decoding every clip from bytes in memory (usad.data.shards.decode_audio);
- ``pipeline``: the training DataLoader itself (usad.data.stream, 10 s crops, batches of 32) with W
  worker processes, audio-s/s of batches delivered after a warm-up, for each W of ``--workers``.

Workers needed per GPU = ceil(consumption / pipeline audio-s/s of one worker); the N-worker rows show
whether it scales that far on this machine. Results: ``<date>_<machine>_decode.{json,md}``.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from usad.bench.harness import RESULTS_DIR, load_average, machine_info, result_stem
from usad.bench.writer import write_report
from usad.config import SAMPLE_RATE
from usad.data.shards import MANIFEST, decode_audio, read_manifest, shard_domains
from usad.data.stream import DataConfig, ShardStream, make_loader
from usad.data.transcode import FORMATS, transcode_corpus

SOURCE = "source"  # the corpus as given (Opus for the project's corpora)


def sample_corpus(corpus: Path, minutes: float, out: Path) -> Path:
    """A manifest of whole shards of ``corpus``, domains in turn, up to ``minutes`` of audio."""
    manifest = read_manifest(corpus)
    by_domain: dict[str, list[dict]] = {}
    for entry in manifest["shards"]:
        by_domain.setdefault(shard_domains(entry)[0], []).append(entry)
    chosen, seconds = [], 0.0
    for group in zip(*by_domain.values()) if len(by_domain) > 1 else ([e] for e in manifest["shards"]):
        for entry in group:
            if seconds < minutes * 60:
                chosen.append(entry | {"path": str((corpus / entry["path"]).resolve())})
                seconds += sum(entry["seconds"].values())
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).write_text(json.dumps(manifest | {"shards": chosen}))
    return out


def codec_rate(corpus: Path) -> float:
    """Audio-s/s of one core decoding every clip of ``corpus`` from bytes in memory."""
    members = []
    for entry in read_manifest(corpus)["shards"]:
        with tarfile.open(corpus / entry["path"]) as tar:
            members += [tar.extractfile(m).read() for m in tar.getmembers() if not m.name.endswith(".json")]
    start, samples = time.perf_counter(), 0
    for data in members:
        samples += len(decode_audio(data, "bench"))
    return samples / SAMPLE_RATE / (time.perf_counter() - start)


def _children_rss_mb() -> float:
    """Resident memory of this process's children (the DataLoader workers), MB; shared pages count in each."""
    pid, total = os.getpid(), 0
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for child in children:
            status = Path(f"/proc/{child}/status").read_text().splitlines()
            total += next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return float("nan")
    return total / 1024


def pipeline_rate(corpus: Path, workers: int, seconds: float, warmup_batches: int) -> tuple[float, float]:
    """(audio-s/s of batches from the training DataLoader with ``workers`` processes, worker RSS MB in all)."""
    config = DataConfig(corpus=[str(corpus)], crop_seconds=10.0, min_seconds=0.1, workers=workers,
                        shuffle_clips=64, bucket_batches=4)
    loader = iter(make_loader(ShardStream(config, batch_size=32, seed=0)))
    for _ in range(warmup_batches * max(1, workers)):
        next(loader)
    start, audio = time.perf_counter(), 0.0
    while time.perf_counter() - start < seconds:
        audio += float(next(loader).lengths.sum()) / SAMPLE_RATE
    rate, rss = audio / (time.perf_counter() - start), _children_rss_mb()
    del loader  # ends the worker processes
    return rate, rss


def run_decode_bench(corpus: str | Path, minutes: float = 10.0, workers: Sequence[int] = (1, 2),
                     consumption: float = 7000.0, rounds: int = 3, cell_seconds: float = 5.0,
                     log: Callable[[str], None] = print) -> dict:
    corpus = Path(corpus)
    cells: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="usad-decode-") as tmp:
        formats = {SOURCE: sample_corpus(corpus, minutes, Path(tmp) / SOURCE)}
        for fmt in FORMATS:
            log(f"transcoding the sample to {fmt}")
            formats[fmt] = Path(tmp) / fmt
            transcode_corpus(formats[SOURCE], fmt, formats[fmt])
        sizes = {f: sum(s["bytes"] for s in read_manifest(d)["shards"]) for f, d in formats.items()}
        hours = sum(sum(s["seconds"].values()) for s in read_manifest(formats[SOURCE])["shards"]) / 3600
        for r in range(rounds):
            names = list(formats)
            for fmt in names[r % len(names):] + names[: r % len(names)]:
                cell = cells.setdefault(fmt, {"codec": [], "pipeline": {w: [] for w in workers},
                                              "rss_mb": {w: [] for w in workers}})
                cell["codec"].append(codec_rate(formats[fmt]))
                for w in workers:
                    rate, rss = pipeline_rate(formats[fmt], w, cell_seconds, warmup_batches=2)
                    cell["pipeline"][w].append(rate)
                    cell["rss_mb"][w].append(rss)
                    log(f"round {r + 1}/{rounds} {fmt}: {w} workers {rate:.0f} audio-s/s")
    rows = []
    for fmt, cell in cells.items():
        pipeline = {w: statistics.median(v) for w, v in cell["pipeline"].items()}
        # One DataLoader worker's share: the smallest timed count of worker processes (0 = in-process).
        fewest = min((w for w in pipeline if w > 0), default=0)
        per_worker = pipeline[fewest] / max(1, fewest)
        rows.append({"format": fmt, "bytes_per_audio_hour": sizes[fmt] / hours,
                     "codec_audio_s_per_s": statistics.median(cell["codec"]),
                     "pipeline_audio_s_per_s": pipeline, "per_worker_audio_s_per_s": per_worker,
                     "workers_needed": math.ceil(consumption / per_worker),
                     "workers_rss_mb": {w: statistics.median(v) for w, v in cell["rss_mb"].items()},
                     "rounds": {"codec": cell["codec"], "pipeline": cell["pipeline"]}})
    return {"kind": "decode", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info("cpu"), "load_average": load_average(), "corpus": str(corpus),
            "sample_hours": hours, "consumption_audio_s_per_s": consumption, "rounds": rounds,
            "cell_seconds": cell_seconds, "rows": rows}


def decode_markdown(record: dict) -> str:
    workers = sorted({int(w) for row in record["rows"] for w in row["pipeline_audio_s_per_s"]})
    machine = record["machine"]
    lines = [f"# Decode throughput: {machine['cpu']} ({machine['cores']} cores), {record['created'][:10]}", "",
             f"Sample: {record['sample_hours'] * 60:.1f} min of `{record['corpus']}`; 10 s crops, batches of 32; "
             f"median of {record['rounds']} interleaved rounds of {record['cell_seconds']:g} s per cell; "
             f"load average {record['load_average']}. Workers needed to feed "
             f"{record['consumption_audio_s_per_s']:.0f} audio-s/s (one GPU) = ceil(that / one worker's rate).", "",
             "| format | MB per audio-hour | codec, 1 core (audio-s/s) | "
             + " | ".join(f"pipeline {w} worker{'s' * (w > 1)}" for w in workers)
             + " | per worker | workers needed per GPU |",
             "|---|---|---|" + "---|" * len(workers) + "---|---|"]
    for row in record["rows"]:
        rates = {int(w): v for w, v in row["pipeline_audio_s_per_s"].items()}
        lines.append(f"| {row['format']} | {row['bytes_per_audio_hour'] / 1e6:.1f} | "
                     f"{row['codec_audio_s_per_s']:.0f} | " + " | ".join(f"{rates[w]:.0f}" for w in workers)
                     + f" | {row['per_worker_audio_s_per_s']:.0f} | {row['workers_needed']} |")
    return "\n".join(lines) + "\n"


def write_decode_report(record: dict, directory: Path = RESULTS_DIR) -> Path:
    return write_report(directory, result_stem(record, "decode"), record, decode_markdown(record))["json"]
