"""Frozen-encoder features of a task's clips, every layer, cached per (model fingerprint, task,
condition, rows).

Clip tasks keep per-layer mean and std over real frames: (N, L, D) each. Frame tasks keep every
layer at fixed probe times (one every ``frame_hop`` s of the task, the same times for every model,
so all models are scored on identical labels): (N, K, L, D) with labels (N, K).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import soundfile as sf
from rich.progress import Progress

from usad.audio import MIN_SAMPLES
from usad.bench.encoders import BenchEncoder
from usad.config import SAMPLE_RATE
from usad.data.tasks import clip_path, frame_targets
from usad.embed import encode_by_length
from usad.files import atomic_path

DEFAULT_FRAME_HOP = 0.08
BATCH_SECONDS = 80.0  # padded audio per encoder call
_MEMO: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}  # (fingerprint, clip sha256) -> pooled


def sha_key(condition: str) -> str:
    return "sha256" if condition == "clean" else f"sha256_{condition}"


def manifest_hash(manifest: dict, rows: list[dict], condition: str = "clean") -> str:
    key = sha_key(condition)
    listed = [(r["id"], r.get(key, ""), r["split"], r["label"]) for r in rows]
    return hashlib.sha256(json.dumps([manifest.get("frame_hop"), listed]).encode()).hexdigest()


def probe_times(seconds: float, hop: float = DEFAULT_FRAME_HOP) -> np.ndarray:
    return (np.arange(int(seconds / hop)) + 0.5) * hop


def _load(audio_dir: Path, task: str, row: dict, condition: str) -> np.ndarray:
    audio, rate = sf.read(clip_path(audio_dir, task, row["id"], condition), dtype="float32")
    if rate != SAMPLE_RATE:
        raise ValueError(f"{task}/{row['id']}: stored at {rate} Hz")
    return np.pad(audio, (0, max(0, MIN_SAMPLES - audio.size)))


def extract(encoder: BenchEncoder, manifest: dict, audio_dir: str | Path, cache_dir: str | Path,
            progress: Progress | None = None, condition: str = "clean",
            rows: list[dict] | None = None) -> dict[str, np.ndarray]:
    """Features of ``rows`` (default: every row of ``manifest``) in one condition, from the cache when
    present."""
    task, frame_task = manifest["task"], manifest["kind"] == "frame"
    rows = manifest["rows"] if rows is None else rows
    hop = manifest.get("frame_hop") or DEFAULT_FRAME_HOP
    digest = manifest_hash(manifest, rows, condition)[:12]
    cache = Path(cache_dir) / encoder.fingerprint[:16] / f"{task}-{condition}-{digest}.npz"
    if cache.is_file():
        with np.load(cache) as stored:
            return dict(stored)
    if frame_task and encoder.frame_rate is None:
        raise ValueError(f"{encoder.name} is a clip-level encoder; it has no frames for {task}")
    audio_dir = Path(audio_dir)
    clips = [_load(audio_dir, task, row, condition) for row in rows]
    results: list = [None] * len(rows)
    todo = list(range(len(rows)))
    memo_key = sha_key(condition)
    if not frame_task:  # clips shared with an earlier task of this run (T1 and T2 are the same audio)
        for i, row in enumerate(rows):
            results[i] = _MEMO.get((encoder.fingerprint, row.get(memo_key)))
        todo = [i for i in todo if results[i] is None]
    label = task if condition == "clean" else f"{task} {condition}"
    bar = progress.add_task(f"{encoder.name} {label}", total=len(rows), completed=len(rows) - len(todo)) \
        if progress else None
    clips_by_length = ((i, clips[i]) for i in sorted(todo, key=lambda i: clips[i].size))
    for i, h in encode_by_length(encoder, clips_by_length, batch_seconds=BATCH_SECONDS):
        h = h.astype(np.float32)
        if frame_task:
            times = probe_times(clips[i].size / SAMPLE_RATE, hop)
            index = np.minimum((times * encoder.frame_rate).astype(np.int64), h.shape[1] - 1)
            results[i] = h[:, index].transpose(1, 0, 2)  # (K, L, D)
        else:
            results[i] = (h.mean(1), h.std(1))
            if rows[i].get(memo_key):
                _MEMO[(encoder.fingerprint, rows[i][memo_key])] = results[i]
        if progress:
            progress.advance(bar)
    if frame_task:
        out = {"frames": np.stack(results).astype(np.float16),
               "labels": np.stack([frame_targets(manifest, r, probe_times(c.size / SAMPLE_RATE, hop))
                                   for r, c in zip(rows, clips)])}
    else:
        out = {"mean": np.stack([m for m, _ in results]).astype(np.float16),
               "std": np.stack([s for _, s in results]).astype(np.float16)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache) as tmp:
        np.savez(tmp, **out)
    return out
