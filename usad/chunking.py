"""Long audio in bounded memory: overlapping windows in, stitched frames out. numpy only.

A window covers a core span of ``chunk`` samples plus ``context`` samples on each side; only the
frames of the core span are kept, so each kept frame saw at least ``context`` of audio around it.
Spans start on multiples of the encoder hop, so window frame j is global frame start / hop + j.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np


@dataclass
class Window:
    audio: np.ndarray  # (S,) float32
    keep_start: int  # first window frame that belongs to the core span
    keep_stop: int | None  # one past the last kept frame; None keeps every frame to the end


def iter_windows(blocks: Iterable[np.ndarray], hop: int, chunk: int, context: int) -> Iterator[Window]:
    """Cut a stream of audio blocks into overlapping windows. ``chunk`` and ``context`` are in
    samples and must be multiples of ``hop`` (samples per encoder frame)."""
    if chunk % hop or context % hop:
        raise ValueError(f"chunk ({chunk}) and context ({context}) must be multiples of the hop ({hop})")
    buffer = np.zeros(0, dtype=np.float32)
    buffer_start = 0  # global sample index of buffer[0]
    core_start = 0
    for block in blocks:
        buffer = np.concatenate([buffer, block])
        # Emit while the buffer holds the whole window of the next core span.
        while buffer_start + len(buffer) >= core_start + chunk + context:
            window_start = max(0, core_start - context)
            window = buffer[window_start - buffer_start: core_start + chunk + context - buffer_start]
            first = (core_start - window_start) // hop
            yield Window(window.copy(), first, first + chunk // hop)
            core_start += chunk
            drop = max(0, core_start - context) - buffer_start
            buffer, buffer_start = buffer[drop:], buffer_start + drop
    window_start = max(0, core_start - context)
    tail = buffer[window_start - buffer_start:]
    if core_start == 0 or buffer_start + len(buffer) > core_start:
        yield Window(tail.copy(), (core_start - window_start) // hop, None)


class FrameAccumulator:
    """Collects kept frames of (layers, T, D) arrays; keeps all frames or only running sums."""

    def __init__(self, keep_frames: bool):
        self.keep_frames = keep_frames
        self.parts: list[np.ndarray] = []
        self.total: np.ndarray | None = None
        self.count = 0

    def add(self, frames: np.ndarray) -> None:
        """frames: (layers, T, D) of one window's kept span."""
        if self.keep_frames:
            self.parts.append(frames)
        summed = frames.sum(axis=1, dtype=np.float64)
        self.total = summed if self.total is None else self.total + summed
        self.count += frames.shape[1]

    def frames(self) -> np.ndarray:
        return np.concatenate(self.parts, axis=1)

    def mean(self) -> np.ndarray:
        return (self.total / max(self.count, 1)).astype(np.float32)
