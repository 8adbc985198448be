"""``usad data transcode SRC --to flac|pcm16 --out DST``: a corpus's shards in another audio format.

Opus is the right format to move a corpus (compact); the GPU machine decodes FLAC ~8x and 16-bit PCM
far faster (bench/decode.py). Each shard is transcoded by one worker process into a shard of the
same name and clips (``{key}.flac`` or ``{key}.wav`` beside the unchanged ``{key}.json``), written
atomically, so a killed run keeps every finished shard and a rerun skips them. The source shards'
sha256 are verified first; DST's manifest keeps each source hash as ``source_sha256`` next to the
new ``sha256``, and every other manifest field.
"""

from __future__ import annotations

import io
import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import soundfile as sf
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from webdataset import TarWriter
from webdataset.tariterators import group_by_keys, tar_file_iterator

from usad.audio import AudioError
from usad.config import SAMPLE_RATE
from usad.data.shards import MANIFEST, audio_member, decode_audio, read_manifest, sha256_file
from usad.errors import UsadError

FORMATS = {"flac": ("flac", "FLAC"), "pcm16": ("wav", "WAV")}  # --to: (member extension, soundfile format)


class TranscodeError(UsadError, ValueError):
    pass


def encode(audio, fmt: str) -> bytes:
    """(S,) float32 at 16 kHz -> bytes of a ``fmt`` member (16-bit samples)."""
    buffer = io.BytesIO()
    sf.write(buffer, audio, SAMPLE_RATE, format=FORMATS[fmt][1], subtype="PCM_16")
    return buffer.getvalue()


def transcode_shard(src: str, dst: str, fmt: str) -> dict:
    """One shard; returns its manifest figures (clips, seconds per domain, undecodable clips skipped)."""
    ext = FORMATS[fmt][0]
    clips, seconds, skipped = 0, {}, []
    tmp = dst + ".tmp"
    with open(src, "rb") as stream, open(tmp, "wb") as out, TarWriter(out, encoder=False, mtime=0, user="",
                                                                         group="") as writer:
        for sample in group_by_keys({**f, "__url__": src} for f in tar_file_iterator(stream)):
            member, name = audio_member(sample), f"{src}:{sample['__key__']}"
            try:
                if member is None:
                    raise AudioError(f"{name}: audio member missing")
                audio = decode_audio(member[1], name)
            except AudioError as err:
                skipped.append(str(err))
                continue
            meta = json.loads(sample.get("json", b"{}"))
            writer.write({"__key__": sample["__key__"], ext: encode(audio, fmt), "json": sample.get("json", b"{}")})
            clips += 1
            domain = meta.get("domain", "")
            seconds[domain] = round(seconds.get(domain, 0.0) + len(audio) / SAMPLE_RATE, 3)
    os.replace(tmp, dst)
    return {"clips": clips, "seconds": seconds, "skipped": skipped}


def _plan(src: Path, out: Path) -> list[tuple[dict, Path, Path]]:
    manifest = read_manifest(src)
    jobs, names = [], set()
    for entry in manifest["shards"]:
        source, target = src / entry["path"], out / Path(entry["path"]).name
        if target.name in names:
            raise TranscodeError(f"{src}: two shards are named {target.name}; transcode their corpora apart")
        names.add(target.name)
        jobs.append((entry, source, target))
    return jobs


def transcode_corpus(src: str | Path, fmt: str, out: str | Path, workers: int | None = None) -> dict:
    """Transcode every shard of ``src`` into ``out`` and write its manifest; returns the manifest."""
    src, out = Path(src), Path(out)
    if fmt not in FORMATS:
        raise TranscodeError(f"--to {fmt!r}: choose from {', '.join(FORMATS)}")
    if out.resolve() == src.resolve():
        raise TranscodeError(f"{out}: the output must be another directory than the source")
    jobs = _plan(src, out)
    bad = [str(source) for entry, source, _ in jobs if not source.is_file() or sha256_file(source) != entry["sha256"]]
    if bad:
        raise TranscodeError(f"sha256 differs from {src / MANIFEST} (or missing): {', '.join(bad)}")
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    todo = [(entry, source, target) for entry, source, target in jobs if not target.is_file()]
    with ProcessPoolExecutor(max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))) as pool, \
            Progress(TextColumn(f"transcode to {fmt}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        task = bar.add_task("shards", total=len(jobs), completed=len(jobs) - len(todo))
        futures = {pool.submit(transcode_shard, str(source), str(target), fmt): target.name
                   for _, source, target in todo}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            bar.advance(task)
    manifest = read_manifest(src)
    shards = []
    for entry, _, target in jobs:
        done = results.get(target.name)
        shards.append(entry | {"path": target.name, "sha256": sha256_file(target), "bytes": target.stat().st_size,
                               "source_sha256": entry["sha256"], "audio_format": fmt}
                      | ({"clips": done["clips"], "seconds": done["seconds"], "skipped": len(done["skipped"])}
                         if done else {}))
    manifest = manifest | {"shards": shards, "audio_format": fmt, "transcoded_from": str(src)}
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, out / MANIFEST)
    return manifest
