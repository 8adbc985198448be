"""Frozen-encoder features of a task's clips, every layer, cached per (model fingerprint, task).

Clip tasks keep per-layer mean and std over real frames: (N, L, D) each. Frame tasks keep every
layer at fixed probe times (one every ``FRAME_PROBE_HOP`` s, the same times for every model, so
all models are scored on identical labels): (N, K, L, D) with labels (N, K).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import soundfile as sf
from rich.progress import Progress

from usad.audio import MIN_SAMPLES, SAMPLE_RATE
from usad.bench.encoders import BenchEncoder
from usad.data.tasks import clip_path
from usad.embed import encode_by_length

FRAME_PROBE_HOP = 0.08
BATCH_SECONDS = 80.0
_MEMO: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}  # (fingerprint, clip sha256) -> pooled


def manifest_hash(manifest: dict) -> str:
    rows = [(r["id"], r.get("sha256", ""), r["split"], r["label"]) for r in manifest["rows"]]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def probe_times(seconds: float) -> np.ndarray:
    return (np.arange(int(seconds / FRAME_PROBE_HOP)) + 0.5) * FRAME_PROBE_HOP


def frame_labels(row: dict, times: np.ndarray) -> np.ndarray:
    """1 where a probe time falls inside one of the row's speech segments."""
    labels = np.zeros(times.size, np.int64)
    for start, end in row["segments"]:
        labels[(times >= start) & (times < end)] = 1
    return labels


def _load(audio_dir: Path, task: str, row: dict) -> np.ndarray:
    audio, rate = sf.read(clip_path(audio_dir, task, row["id"]), dtype="float32")
    if rate != SAMPLE_RATE:
        raise ValueError(f"{task}/{row['id']}: stored at {rate} Hz")
    return np.pad(audio, (0, max(0, MIN_SAMPLES - audio.size)))


def extract(encoder: BenchEncoder, manifest: dict, audio_dir: str | Path, cache_dir: str | Path,
            progress: Progress | None = None) -> dict[str, np.ndarray]:
    """Features of every row of ``manifest`` (loaded from the cache when present)."""
    task, frame_task = manifest["task"], manifest["kind"] == "frame"
    cache = Path(cache_dir) / encoder.fingerprint[:16] / f"{task}-{manifest_hash(manifest)[:12]}.npz"
    if cache.is_file():
        with np.load(cache) as stored:
            return dict(stored)
    if frame_task and encoder.frame_rate is None:
        raise ValueError(f"{encoder.name} is a clip-level encoder; it has no frames for {task}")
    audio_dir = Path(audio_dir)
    rows = manifest["rows"]
    clips = [_load(audio_dir, task, row) for row in rows]
    results: list = [None] * len(rows)
    todo = list(range(len(rows)))
    if not frame_task:  # clips shared with an earlier task of this run (T1 and T2 are the same audio)
        for i, row in enumerate(rows):
            results[i] = _MEMO.get((encoder.fingerprint, row.get("sha256")))
        todo = [i for i in todo if results[i] is None]
    bar = progress.add_task(f"{encoder.name} {task}", total=len(rows), completed=len(rows) - len(todo)) \
        if progress else None
    clips_by_length = ((i, clips[i]) for i in sorted(todo, key=lambda i: clips[i].size))
    for i, h in encode_by_length(encoder, clips_by_length, batch_seconds=BATCH_SECONDS):
        h = h.astype(np.float32)
        if frame_task:
            times = probe_times(clips[i].size / SAMPLE_RATE)
            index = np.minimum((times * encoder.frame_rate).astype(np.int64), h.shape[1] - 1)
            results[i] = h[:, index].transpose(1, 0, 2)  # (K, L, D)
        else:
            results[i] = (h.mean(1), h.std(1))
            if rows[i].get("sha256"):
                _MEMO[(encoder.fingerprint, rows[i]["sha256"])] = results[i]
        if progress:
            progress.advance(bar)
    if frame_task:
        out = {"frames": np.stack(results).astype(np.float16),
               "labels": np.stack([frame_labels(r, probe_times(c.size / SAMPLE_RATE)) for r, c in zip(rows, clips)])}
    else:
        out = {"mean": np.stack([m for m, _ in results]).astype(np.float16),
               "std": np.stack([s for _, s in results]).astype(np.float16)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(cache)
    return out
