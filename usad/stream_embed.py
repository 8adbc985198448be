"""``usad embed --stream``: one audio file, or raw PCM on stdin, through a ``FrameStream``, torch-free.

The source is read in blocks (a file through soundfile + soxr at any rate; stdin as 16 kHz mono
s16le or f32le) and pushed as it comes, so memory stays flat however long the stream runs when
frames are mean-pooled; ``pool="none"`` keeps every frame and its start time.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from usad.audio import AudioError, iter_audio_blocks
from usad.chunking import FrameAccumulator
from usad.config import SAMPLE_RATE
from usad.streaming import open_stream, stream_blocks

PCM_FORMATS = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}
STDIN = "-"


def iter_pcm_blocks(source: BinaryIO, pcm_format: str = "s16le", block_seconds: float = 0.1) -> Iterator[np.ndarray]:
    """Raw 16 kHz mono PCM from a binary stream -> float32 blocks of up to ``block_seconds`` as they arrive."""
    if pcm_format not in PCM_FORMATS:
        raise ValueError(f"PCM format must be one of {', '.join(PCM_FORMATS)}, got {pcm_format!r}")
    dtype = PCM_FORMATS[pcm_format]
    block_bytes = max(1, int(block_seconds * SAMPLE_RATE)) * dtype.itemsize
    leftover = b""
    while True:
        data = source.read(block_bytes)
        if not data:
            break
        data = leftover + data
        whole = len(data) // dtype.itemsize * dtype.itemsize
        data, leftover = data[:whole], data[whole:]
        samples = np.frombuffer(data, dtype=dtype).astype(np.float32)
        yield samples / 32768.0 if dtype.kind == "i" else samples
    if leftover:
        raise AudioError(f"stdin: ended inside a sample ({len(leftover)} stray bytes); is it {pcm_format}?")


@dataclass
class StreamResult:
    embedding: np.ndarray  # (layers, D) mean over frames, or (layers, T, D)
    start: np.ndarray | None  # (T,) seconds of each frame's start (pool "none")
    seconds: float  # audio streamed
    frames: int
    latency_ms: float  # algorithmic: chunk + look-ahead + the last window's overhang


def embed_stream(model: str | Path, source: str, layers: Sequence[int] | None = (-1,), pool: str = "mean",
                 pcm_format: str = "s16le", threads: int | None = None,
                 on_progress: Callable[[float], None] | None = None, stdin: BinaryIO | None = None) -> StreamResult:
    """Stream ``source`` (an audio file, or ``-``: raw PCM from ``stdin``) through the model's streaming export."""
    if pool not in ("mean", "none"):
        raise ValueError(f"pool must be 'mean' or 'none', got {pool!r}")
    stream = open_stream(model, threads, layers)
    if source == STDIN:
        blocks = iter_pcm_blocks(stdin or sys.stdin.buffer, pcm_format)
    else:
        blocks = iter_audio_blocks(source, block_seconds=1.0)
    accumulator, starts, seconds = FrameAccumulator(keep_frames=pool == "none"), [], 0.0

    def counted() -> Iterator[np.ndarray]:
        nonlocal seconds
        for block in blocks:
            seconds += block.size / SAMPLE_RATE
            if on_progress:
                on_progress(seconds)
            yield block

    for frames in stream_blocks(stream, counted()):
        accumulator.add(frames.hidden)
        if pool == "none":
            starts.append(frames.start)
    if accumulator.count == 0:
        raise AudioError(f"{'stdin' if source == STDIN else source}: empty audio (0 samples)")
    embedding = accumulator.mean() if pool == "mean" else accumulator.frames()
    return StreamResult(embedding, np.concatenate(starts) if starts else None, seconds, accumulator.count,
                        stream.latency_ms)
