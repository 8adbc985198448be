"""How close a quantized encoder stays to its float twin on held-out audio.

Two figures, both against the float graph on the same crops:
- per-frame cosine: for each clip and exported layer, the mean over real frames of the frame vectors'
  cosine; the guard takes the minimum over clips and layers (what a frame-level task sees);
- clip cosine: the cosine of the mean-pooled clip embeddings, mean over clips, minimum over layers (what a
  clip-level task sees). A pooled-output export has clip embeddings only: its per-frame figure is the clip one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Outputs:
    """Encoder outputs on the held-out crops: per clip (L, T, D) frames, or (L, D) pooled embeddings."""

    frames: list[np.ndarray]
    masks: list[np.ndarray]
    pooled: bool


@dataclass(frozen=True)
class Fidelity:
    frame_cosine: float  # min over clips and layers of the mean per-frame cosine
    clip_cosine: float  # min over layers of the mean over clips of the pooled-embedding cosine
    clip_cosine_min: float  # min over clips and layers of the pooled-embedding cosine


def run_outputs(session, crops: Sequence[np.ndarray]) -> Outputs:
    frames, masks = [], []
    for crop in crops:
        out, mask = session.run(None, {"waveforms": crop[None].astype(np.float32),
                                       "lengths": np.array([crop.size], dtype=np.int64)})
        frames.append(out[0])
        masks.append(mask[0])
    return Outputs(frames, masks, pooled=frames[0].ndim == 2)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)


def _pooled(out: np.ndarray, mask: np.ndarray, pooled: bool) -> np.ndarray:
    if pooled:
        return out
    weights = mask.astype(np.float64)[None, :, None]
    return (out * weights).sum(1) / max(weights.sum(), 1.0)


def compare(reference: Outputs, candidate: Outputs) -> Fidelity:
    per_frame, per_clip = [], []
    for ref, cand, mask in zip(reference.frames, candidate.frames, reference.masks):
        clip = _cosine(_pooled(ref, mask, reference.pooled), _pooled(cand, mask, reference.pooled))  # (L,)
        per_clip.append(clip)
        per_frame.append(clip if reference.pooled else _cosine(ref[:, mask], cand[:, mask]).mean(-1))
    per_frame, per_clip = np.stack(per_frame), np.stack(per_clip)  # (clips, L)
    return Fidelity(float(per_frame.min()), float(per_clip.mean(0).min()), float(per_clip.min()))
