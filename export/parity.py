"""Parity of an exported ONNX encoder against the torch model: max abs error and cosine.

Checked at single clips of several lengths (default 1, 3.7, 10 and 30 s) and on one padded batch
of all of them, on real audio when given (crops of it), else on seeded noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from usad.config import SAMPLE_RATE
from usad.model import UsadEncoder

PARITY_SECONDS = (1.0, 3.7, 10.0, 30.0)
MAX_ABS_TOLERANCE = 1e-3
COSINE_TOLERANCE = 0.99999


@dataclass
class ParityCase:
    name: str
    max_abs_error: float
    min_cosine: float  # lowest per-frame (or per-clip, pooled output) cosine over real frames
    mask_equal: bool

    def ok(self, max_abs: float, cosine: float) -> bool:
        return self.mask_equal and self.max_abs_error <= max_abs and self.min_cosine >= cosine


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(-1, a.shape[-1]).astype(np.float64), b.reshape(-1, b.shape[-1]).astype(np.float64)
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(1) / np.maximum(denom, 1e-12)


def compare_outputs(reference: np.ndarray, candidate: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Max abs error and min cosine over the real frames of (B, L, T, D) or over (B, L, D) embeddings."""
    if reference.ndim == 4:  # (B, L, T, D): keep real frames only
        keep = np.broadcast_to(mask[:, None, :], reference.shape[:3])
        reference, candidate = reference[keep], candidate[keep]
    return float(np.abs(reference - candidate).max()), float(_cosine_rows(reference, candidate).min())


def parity_inputs(seconds: tuple[float, ...], audio: np.ndarray | None = None,
                  seed: int = 0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, waveforms (B, S) float32, lengths (B,) int64) for each length, then the padded batch."""
    rng = np.random.default_rng(seed)
    clips = []
    for s in seconds:
        n = int(round(s * SAMPLE_RATE))
        if audio is not None and audio.size:
            clip = np.resize(audio, n).astype(np.float32)  # tile short audio up to length
        else:
            clip = (rng.standard_normal(n) * 0.1).astype(np.float32)
        clips.append(clip)
    cases = [(f"{s:g}s", c[None], np.array([c.size], dtype=np.int64)) for s, c in zip(seconds, clips)]
    longest = max(c.size for c in clips)
    batch = np.zeros((len(clips), longest), dtype=np.float32)
    for i, c in enumerate(clips):
        batch[i, : c.size] = c
    cases.append(("padded_batch", batch, np.array([c.size for c in clips], dtype=np.int64)))
    return cases


def check_parity(model: UsadEncoder, onnx_path: str | Path, layers: list[int], pooled: bool,
                 seconds: tuple[float, ...] = PARITY_SECONDS, audio: np.ndarray | None = None,
                 threads: int | None = None) -> list[ParityCase]:
    """Run torch and ONNX Runtime on the same inputs; figures per case."""
    import onnxruntime as ort

    from usad.export.onnx_export import ExportWrapper

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    wrapper = ExportWrapper(model.eval(), layers, pooled)
    results = []
    for name, waves, lengths in parity_inputs(seconds, audio):
        with torch.no_grad():
            ref, ref_mask = (t.numpy() for t in wrapper(torch.from_numpy(waves), torch.from_numpy(lengths)))
        out, mask = session.run(None, {"waveforms": waves, "lengths": lengths})
        max_abs, cosine = compare_outputs(ref, out, ref_mask)
        results.append(ParityCase(name, max_abs, cosine, bool(np.array_equal(mask, ref_mask))))
    return results


def parity_report(cases: list[ParityCase], max_abs: float = MAX_ABS_TOLERANCE,
                  cosine: float = COSINE_TOLERANCE) -> dict:
    return {"tolerance": {"max_abs_error": max_abs, "min_cosine": cosine},
            "passed": all(c.ok(max_abs, cosine) for c in cases),
            "cases": [asdict(c) for c in cases]}
