"""Embeddings of audio, the one path every backend goes through: overlapping windows in, stitched frames out.

A backend is anything with the ``Backend`` protocol below: the torch encoder (``usad.backends.TorchBackend``),
the ONNX Runtime encoder (``usad.runtime.Encoder``) or a future TensorRT engine. Audio streams through
windows of ``Windowing.chunk_seconds`` with ``context_seconds`` of context on each side (only the frames of the
core span are kept); files shorter than a chunk are one window each and are batched by length.
numpy only: the torch-free runtime shares this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from usad.audio import MIN_SAMPLES, AudioError, audio_duration, iter_audio_blocks, load_audio
from usad.chunking import FrameAccumulator, Window, iter_windows
from usad.config import SAMPLE_RATE
from usad.errors import InputError

Pool = Literal["mean", "none"]
POOLS: tuple[str, ...] = ("mean", "none")
MIN_CHUNK_SECONDS = 1.0  # shorter windows leave the encoder too little context to be worth their overhead


class Backend(Protocol):
    """An encoder the embed path can drive."""

    hop: int  # samples per output frame
    depth: int  # Transformer blocks: hidden states are numbered 0 (positional encoder output) .. depth
    layers: tuple[int, ...]  # the hidden-state numbers that ``encode`` returns, in order

    def encode(self, waveforms: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, S) float32 at 16 kHz, (B,) int64 -> hidden (L, B, T, D) float32, real frames (B,)."""
        ...


def select_layers(backend: Backend, requested: Sequence[int] | None) -> list[int]:
    """Positions in ``backend.layers`` of the requested hidden-state numbers (negative: from the last,
    -1 = depth); None keeps every layer the backend returns. A number the backend lacks is an InputError."""
    if requested is None:
        return list(range(len(backend.layers)))
    positions = []
    for number in requested:
        resolved = number + backend.depth + 1 if number < 0 else number
        if not 0 <= resolved <= backend.depth:
            raise InputError(f"layer {number} is out of range: this encoder has hidden states 0..{backend.depth} "
                             f"(-{backend.depth + 1}..-1 from the end)")
        if resolved not in backend.layers:
            raise InputError(f"layer {number} (hidden state {resolved}) is not in this model file, which holds "
                             f"hidden states {list(backend.layers)}")
        positions.append(backend.layers.index(resolved))
    return positions


@dataclass(frozen=True)
class Windowing:
    """How long audio is cut: cores of ``chunk_seconds`` with ``context_seconds`` of context each side."""

    chunk_seconds: float = 30.0
    context_seconds: float = 2.0

    def __post_init__(self) -> None:
        if not self.chunk_seconds >= MIN_CHUNK_SECONDS:
            raise InputError(f"chunk length must be at least {MIN_CHUNK_SECONDS:g} s, got {self.chunk_seconds:g}")
        if not 0 <= self.context_seconds <= self.chunk_seconds:
            raise InputError(f"context must be between 0 and the chunk length ({self.chunk_seconds:g} s), "
                             f"got {self.context_seconds:g}")

    def samples(self, hop: int) -> tuple[int, int]:
        """(chunk, context) in samples, on multiples of the hop."""
        chunk = int(self.chunk_seconds * SAMPLE_RATE) // hop * hop
        context = max(hop, int(self.context_seconds * SAMPLE_RATE) // hop * hop)
        return chunk, context


def check_pool(pool: str) -> Pool:
    if pool not in POOLS:
        raise InputError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    return pool  # type: ignore[return-value]


def encode_windows(backend: Backend, windows: Sequence[Window],
                   positions: Sequence[int] | None = None) -> list[np.ndarray]:
    """One padded batch of windows through the backend; each window's kept frames (L, T_kept, D) at the
    layer ``positions`` (None: all). Only ``backend.encode`` is used."""
    lengths = np.array([max(w.audio.size, MIN_SAMPLES) for w in windows], dtype=np.int64)
    batch = np.zeros((len(windows), int(lengths.max())), dtype=np.float32)
    for i, window in enumerate(windows):
        batch[i, : window.audio.size] = window.audio
    hidden, frames = backend.encode(batch, lengths)
    if positions is not None and list(positions) == list(range(hidden.shape[0])):
        positions = None  # every layer: views of the output, no copies
    kept = []
    for i, window in enumerate(windows):
        stop = int(frames[i]) if window.keep_stop is None else min(window.keep_stop, int(frames[i]))
        layers = hidden[:, i] if positions is None else hidden[positions, i]
        kept.append(layers[:, window.keep_start:stop])
    return kept


def _finish(acc: FrameAccumulator, pool: Pool) -> np.ndarray:
    return acc.mean() if pool == "mean" else acc.frames()


def embed_blocks(backend: Backend, blocks: Iterable[np.ndarray], layers: Sequence[int] | None = None,
                 pool: Pool = "mean", windowing: Windowing = Windowing(), batch_windows: int = 1) -> np.ndarray:
    """A stream of 16 kHz mono blocks (one clip) -> (L, D) mean-pooled or (L, T, D) frames, in bounded memory.

    One window per call by default: a 34 s window already fills the cores, and batching 4 of them quadrupled
    the peak (INT8 usad-tiny, 2 threads: 1.8 GB RSS against 0.5 GB, at the same speed)."""
    positions, pool = select_layers(backend, layers), check_pool(pool)
    chunk, context = windowing.samples(backend.hop)
    acc = FrameAccumulator(keep_frames=pool == "none")
    pending: list[Window] = []
    for window in iter_windows(blocks, backend.hop, chunk, context):
        pending.append(window)
        if len(pending) == batch_windows:
            for frames in encode_windows(backend, pending, positions):
                acc.add(frames)
            pending.clear()
    if pending:
        for frames in encode_windows(backend, pending, positions):
            acc.add(frames)
    return _finish(acc, pool)


def encode_by_length(backend: Backend, items: Iterable[tuple[object, np.ndarray]],
                     positions: Sequence[int] | None = None,
                     batch_seconds: float = 60.0) -> Iterator[tuple[object, np.ndarray]]:
    """(key, (L, T, D) frames) of whole (key, clip) items taken as they come (sort them by length first), in
    padded batches of at most ``batch_seconds`` of audio. Only ``backend.encode`` is used."""
    batch: list[tuple[object, np.ndarray]] = []

    def flush() -> Iterator[tuple[object, np.ndarray]]:
        windows = [Window(audio, 0, None) for _, audio in batch]
        yield from zip((key for key, _ in batch), encode_windows(backend, windows, positions))
        batch.clear()

    for key, audio in items:
        if batch and (len(batch) + 1) * max(audio.size, batch[-1][1].size) / SAMPLE_RATE > batch_seconds:
            yield from flush()
        batch.append((key, audio))
    if batch:
        yield from flush()


def iter_arrays(backend: Backend, clips: Sequence[np.ndarray], layers: Sequence[int] | None = None,
                pool: Pool = "mean", batch_seconds: float = 60.0,
                windowing: Windowing = Windowing()) -> Iterator[tuple[int, np.ndarray]]:
    """(index, embedding) for 16 kHz mono clips, in batch order: ones up to a chunk long batched by length,
    longer ones through windows. Embeddings are (L, D) pooled or (L, T, D) frames."""
    positions, pool = select_layers(backend, layers), check_pool(pool)
    chunk = windowing.chunk_seconds * SAMPLE_RATE
    short = sorted((i for i, c in enumerate(clips) if c.size <= chunk), key=lambda i: clips[i].size)
    for index, frames in encode_by_length(backend, ((i, clips[i]) for i in short), positions, batch_seconds):
        yield index, _pooled(frames, pool)
    numbers = [backend.layers[i] for i in positions]
    for index in (i for i, c in enumerate(clips) if c.size > chunk):
        yield index, embed_blocks(backend, [clips[index]], numbers, pool, windowing)


def _pooled(frames: np.ndarray, pool: Pool) -> np.ndarray:
    acc = FrameAccumulator(keep_frames=pool == "none")
    acc.add(frames)
    return _finish(acc, pool)


class Source(Protocol):
    """One clip to embed, read lazily: a file (``AudioFile``), a member of a tar shard, anything with these."""

    key: str  # how the clip is named in outputs and errors

    def duration(self) -> float:
        """Seconds of audio, read cheaply (a header) where possible."""
        ...

    def load(self) -> np.ndarray:
        """The whole clip, (S,) float32 16 kHz mono; raises ``AudioError``."""
        ...

    def blocks(self, seconds: float) -> Iterable[np.ndarray]:
        """The clip as consecutive 16 kHz mono blocks of about ``seconds``, in bounded memory."""
        ...


@dataclass(frozen=True)
class AudioFile:
    """A ``Source`` over any file soundfile reads."""

    key: str

    def duration(self) -> float:
        return audio_duration(self.key)

    def load(self) -> np.ndarray:
        return load_audio(self.key)

    def blocks(self, seconds: float) -> Iterator[np.ndarray]:
        return iter_audio_blocks(self.key, seconds)


@dataclass(frozen=True)
class ClipResult:
    """One source's outcome: ``embedding`` (L, D) pooled or (L, T, D) frames, or the ``error`` that stopped it."""

    key: str
    seconds: float
    embedding: np.ndarray | None = None
    error: str | None = None


def iter_sources(backend: Backend, sources: Iterable[Source], layers: Sequence[int] | None = None,
                 pool: Pool = "mean", batch_seconds: float = 60.0,
                 windowing: Windowing = Windowing()) -> Iterator[ClipResult]:
    """A ``ClipResult`` per source, as each finishes: clips up to a chunk long sorted and batched by length (at
    most ``batch_seconds`` of padded audio per batch), longer ones streamed through windows. A source that fails
    yields its error and the rest go on. Memory holds one batch and one long clip's windows, never the results."""
    positions, pool = select_layers(backend, layers), check_pool(pool)
    durations: dict[str, float] = {}
    by_key: dict[str, Source] = {}
    for source in sources:
        by_key[source.key] = source
        try:
            durations[source.key] = source.duration()
        except AudioError as err:
            yield ClipResult(source.key, 0.0, error=str(err))
    failed: list[ClipResult] = []

    def loaded(keys: list[str]) -> Iterator[tuple[object, np.ndarray]]:
        for key in keys:
            try:
                yield key, by_key[key].load()
            except AudioError as err:
                failed.append(ClipResult(key, durations[key], error=str(err)))

    short = sorted((k for k, d in durations.items() if d <= windowing.chunk_seconds), key=durations.get)
    for key, frames in encode_by_length(backend, loaded(short), positions, batch_seconds):
        yield from failed
        failed.clear()
        yield ClipResult(str(key), durations[str(key)], _pooled(frames, pool))
    yield from failed
    numbers = [backend.layers[i] for i in positions]
    for key in (k for k, d in durations.items() if d > windowing.chunk_seconds):
        seconds = 0.0

        def counted(blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
            nonlocal seconds
            for block in blocks:
                seconds += block.size / SAMPLE_RATE
                yield block

        try:
            embedding = embed_blocks(backend, counted(by_key[key].blocks(windowing.chunk_seconds)),
                                     numbers, pool, windowing)
        except AudioError as err:
            yield ClipResult(key, seconds, error=str(err))
            continue
        yield ClipResult(key, seconds, embedding)


@dataclass
class EmbedResult:
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)  # (L, D) pooled or (L, T, D)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def embed_files(backend: Backend, paths: Sequence[str | Path], layers: Sequence[int] | None = None,
                pool: Pool = "mean", batch_seconds: float = 60.0, windowing: Windowing = Windowing(),
                on_progress: Callable[[str, float], None] | None = None) -> EmbedResult:
    """Every file's embedding in memory (``iter_sources`` over ``AudioFile``s): for a handful of files; datasets
    go through ``usad.dataset``, which writes as it goes."""
    result = EmbedResult()
    for clip in iter_sources(backend, [AudioFile(str(p)) for p in paths], layers, pool, batch_seconds, windowing):
        if clip.error is not None:
            result.errors[clip.key] = clip.error
            continue
        result.embeddings[clip.key], result.seconds = clip.embedding, result.seconds + clip.seconds
        if on_progress:
            on_progress(clip.key, clip.seconds)
    return result
