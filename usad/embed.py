"""Embeddings of audio files: batching by length, long files in overlapping chunks, bad files reported.

``embed_files`` works with any backend that has ``hop`` (samples per frame), ``num_layers`` and
``encode(waveforms (B, S) float32, lengths (B,) int64) -> (hidden (L, B, T, D), frames (B,))``:
the torch encoder here, or ``usad.runtime.Encoder`` for ONNX files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from usad.audio import AudioError, audio_duration, iter_audio_blocks, load_audio
from usad.chunking import FrameAccumulator, iter_windows
from usad.config import SAMPLE_RATE


class TorchBackend:
    """The torch encoder behind the backend protocol."""

    def __init__(self, model, device: str = "cpu"):
        import torch

        self.torch = torch
        self.model = model.to(device).eval()
        self.device = device
        self.hop = model.config.samples_per_frame
        self.num_layers = model.config.depth + 1

    def encode(self, waveforms: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self.torch
        with torch.inference_mode():
            out = self.model(torch.from_numpy(waveforms).to(self.device), torch.from_numpy(lengths).to(self.device))
            hidden = torch.stack(out.hidden_states).float().cpu().numpy()
        return hidden, out.mask.sum(1).cpu().numpy()


def open_backend(model_path: str | Path | None, device: str = "cpu", threads: int | None = None):
    """A backend for a model dir or .onnx file: ONNX Runtime when an ONNX file is there, else torch.
    ``None`` is the default model shipped with the package."""
    if model_path is None:
        from usad.runtime import default_model_dir

        model_path = default_model_dir()
    path = Path(model_path)
    if path.suffix == ".onnx" or any(path.glob("*.onnx")):
        from usad.runtime import Encoder

        return Encoder(path, threads=threads)
    from usad.modeldir import load

    if threads:
        import torch

        torch.set_num_threads(threads)
    return TorchBackend(load(path), device)


@dataclass
class EmbedResult:
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)  # (L, D) pooled or (L, T, D)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def _select(hidden: np.ndarray, layers: Sequence[int] | None) -> np.ndarray:
    return hidden if layers is None else hidden[list(layers)]


def _finish(acc: FrameAccumulator, pool: str) -> np.ndarray:
    return acc.mean() if pool == "mean" else acc.frames()


def _embed_long(backend, path: str, layers, pool: str, chunk_seconds: float, context_seconds: float,
                batch_windows: int) -> tuple[np.ndarray, float]:
    hop = backend.hop
    chunk = int(chunk_seconds * SAMPLE_RATE) // hop * hop
    context = max(hop, int(context_seconds * SAMPLE_RATE) // hop * hop)
    acc = FrameAccumulator(keep_frames=pool == "none")
    seconds = 0.0

    def blocks():
        nonlocal seconds
        for block in iter_audio_blocks(path, block_seconds=chunk_seconds):
            seconds += len(block) / SAMPLE_RATE
            yield block

    pending = []

    def flush():
        lengths = np.array([len(w.audio) for w in pending], dtype=np.int64)
        batch = np.zeros((len(pending), lengths.max()), dtype=np.float32)
        for i, w in enumerate(pending):
            batch[i, : len(w.audio)] = w.audio
        hidden, frames = backend.encode(batch, lengths)
        for i, w in enumerate(pending):
            stop = int(frames[i]) if w.keep_stop is None else min(w.keep_stop, int(frames[i]))
            acc.add(_select(hidden[:, i, w.keep_start:stop], layers))
        pending.clear()

    for window in iter_windows(blocks(), hop, chunk, context):
        if len(window.audio) < 400:
            window.audio = np.pad(window.audio, (0, 400 - len(window.audio)))
        pending.append(window)
        if len(pending) == batch_windows:
            flush()
    if pending:
        flush()
    return _finish(acc, pool), seconds


def embed_files(
    backend,
    paths: Sequence[str | Path],
    layers: Sequence[int] | None = None,
    pool: str = "mean",
    batch_seconds: float = 60.0,
    chunk_seconds: float = 30.0,
    context_seconds: float = 2.0,
    on_progress: Callable[[str, float], None] | None = None,
) -> EmbedResult:
    """Embed each file. ``layers`` None keeps all (depth + 1); ``pool`` is "mean" (L, D) or
    "none" (L, T, D). Files longer than ``chunk_seconds`` stream through overlapping windows;
    shorter ones are batched by length up to ``batch_seconds`` of padded audio. A file that fails
    is named in ``errors`` and the others go on."""
    if pool not in ("mean", "none"):
        raise ValueError(f"pool must be 'mean' or 'none', got {pool!r}")
    result = EmbedResult()
    durations: dict[str, float] = {}
    for path in map(str, paths):
        try:
            durations[path] = audio_duration(path)
        except AudioError as err:
            result.errors[path] = str(err)
    short = sorted((p for p, d in durations.items() if d <= chunk_seconds), key=durations.get)
    long = [p for p, d in durations.items() if d > chunk_seconds]

    batch: list[tuple[str, np.ndarray]] = []

    def flush():
        lengths = np.array([len(a) for _, a in batch], dtype=np.int64)
        waves = np.zeros((len(batch), lengths.max()), dtype=np.float32)
        for i, (_, audio) in enumerate(batch):
            waves[i, : len(audio)] = audio
        hidden, frames = backend.encode(waves, lengths)
        for i, (path, audio) in enumerate(batch):
            acc = FrameAccumulator(keep_frames=pool == "none")
            acc.add(_select(hidden[:, i, : int(frames[i])], layers))
            result.embeddings[path] = _finish(acc, pool)
            result.seconds += len(audio) / SAMPLE_RATE
            if on_progress:
                on_progress(path, len(audio) / SAMPLE_RATE)
        batch.clear()

    for path in short:
        try:
            audio = load_audio(path)
        except AudioError as err:
            result.errors[path] = str(err)
            continue
        if batch and (len(batch) + 1) * len(audio) / SAMPLE_RATE > batch_seconds:
            flush()
        batch.append((path, audio))
    if batch:
        flush()
    for path in long:
        try:
            result.embeddings[path], seconds = _embed_long(
                backend, path, layers, pool, chunk_seconds, context_seconds, batch_windows=4
            )
        except AudioError as err:
            result.errors[path] = str(err)
            continue
        result.seconds += seconds
        if on_progress:
            on_progress(path, seconds)
    return result
