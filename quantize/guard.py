"""INT8 export with an accuracy guard.

1. Quantize the default node set (weight Conv/MatMuls outside the fbank) with calibration on
   fixed-length crops of real audio.
2. Compare clip embeddings (each exported layer, mean over real frames) with the float model on
   held-out crops from other recordings; with a task scorer, also the mean-task retention.
3. Below threshold: measure each node's leave-one-in sensitivity, exclude the worst 1, 2, 4, ...
   (up to ``max_exclude_fraction`` of the nodes) and retry.
4. Still below: refuse (``QuantizationRefused``, nothing written) unless ``force``.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx

from usad.errors import UsadError
from usad.onnx_conventions import cpu_session
from usad.quantize.calibration import calibration_and_heldout
from usad.quantize.roles import graph_roles
from usad.quantize.sensitivity import leave_one_in
from usad.quantize.static import crop_feeds, prepare, quantize_nodes, quantized_nodes

DEFAULT_MIN_COSINE = 0.99
DEFAULT_MIN_RETENTION = 0.99


class QuantizationRefused(UsadError, RuntimeError):
    """The INT8 model stayed below the accuracy threshold; ``report`` has the figures."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


@dataclass
class Attempt:
    excluded: list[str]
    cosine: float  # min over layers of the mean over held-out clips
    cosine_min_clip: float
    task_retention: float | None
    passed: bool


@dataclass
class GuardReport:
    threshold_cosine: float
    threshold_retention: float
    calibration: dict
    quantized_nodes: list[str] = field(default_factory=list)
    kept_float: dict = field(default_factory=dict)
    sensitivity: dict[str, float] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    passed: bool = False
    forced: bool = False
    written: str | None = None
    tensorrt_variant: dict | None = None  # symmetric-activation twin for TensorRT: cosine, file

    def to_dict(self) -> dict:
        return asdict(self)


def clip_embeddings(session, crops: Sequence[np.ndarray]) -> np.ndarray:
    """(clips, layers, D): every exported layer mean-pooled over real frames (or the pooled output)."""
    rows = []
    for crop in crops:
        out, mask = session.run(None, {"waveforms": crop[None].astype(np.float32),
                                       "lengths": np.array([crop.size], dtype=np.int64)})
        if out.ndim == 4:  # (1, L, T, D)
            weights = mask[0].astype(np.float64)[None, :, None]
            out = (out[0] * weights).sum(1, keepdims=True) / max(weights.sum(), 1.0)
            out = out[:, 0][None]
        rows.append(out[0])
    return np.stack(rows)


class EncoderIO:
    """How the guard feeds a graph and reads clip embeddings off it: an encoder's (waveforms, lengths).
    Another graph (usad.export.streaming's chunk step) brings its own."""

    def calibration_feeds(self, crops: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        return crop_feeds(crops)

    def clip_embeddings(self, session, crops: Sequence[np.ndarray]) -> np.ndarray:
        return clip_embeddings(session, crops)


def embedding_cosine(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    """(min over layers of the mean over clips, min over clips and layers) of the cosine."""
    a, b = reference.astype(np.float64), candidate.astype(np.float64)
    cos = (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
    return float(cos.mean(0).min()), float(cos.min())


def quantize_guarded(
    fp32_path: str | Path,
    out_path: str | Path,
    calibration: Sequence[str | Path],
    min_cosine: float = DEFAULT_MIN_COSINE,
    min_retention: float = DEFAULT_MIN_RETENTION,
    task_score: Callable[[str], float] | None = None,
    force: bool = False,
    exclude: Sequence[str] = (),
    include_fbank: bool = False,
    force_nodes: Sequence[str] = (),
    max_exclude_fraction: float = 0.25,
    crop_seconds: float = 5.0,
    calibration_crops: int = 32,
    heldout_crops: int = 12,
    threads: int | None = None,
    tensorrt_path: str | Path | None = None,
    graph_io: EncoderIO | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> GuardReport:
    """Write a guarded INT8 QDQ model of ``fp32_path`` to ``out_path``; see the module docstring.

    ``include_fbank`` makes the fbank's Conv/MatMul candidates too (they stay float by default);
    ``force_nodes`` are always quantized and never excluded (to test the guard on a broken model).
    ``task_score(onnx_path)`` returns a mean task score; retention is INT8 over float.
    ``tensorrt_path``: also write the same node set with symmetric INT8 activations (TensorRT's
    explicit quantization) there, from the same calibration, its cosine in ``tensorrt_variant``.
    ``max_exclude_fraction`` 0 disables the exclusion retry. ``graph_io``: how to feed the graph and
    embed crops with it (default ``EncoderIO``).
    """
    graph_io = graph_io or EncoderIO()
    embed = graph_io.clip_embeddings
    cal_crops, held_crops = calibration_and_heldout(list(calibration), crop_seconds, calibration_crops, heldout_crops)
    with tempfile.TemporaryDirectory(prefix="usad-int8-") as work:
        work_dir = Path(work)
        float_path = prepare(fp32_path, work_dir)
        float_model = onnx.load(float_path)
        roles = graph_roles(float_model)
        candidates = [n for n in roles.weight + (roles.fbank if include_fbank else []) if n not in exclude]
        candidates = [n for n in candidates if n not in force_nodes]
        report = GuardReport(
            min_cosine, min_retention,
            calibration={"sources": [str(p) for p in calibration],
                         "crop_seconds": crop_seconds, "calibration_crops": len(cal_crops),
                         "heldout_crops": len(held_crops), "method": "MinMax", "activations": "uint8 asymmetric",
                         "weights": "int8 symmetric per-channel"},
            kept_float={"fbank": [n for n in roles.fbank if not include_fbank and n not in force_nodes],
                        "attention_matmul": roles.activation_matmul, "user_excluded": list(exclude)},
        )
        reference = embed(cpu_session(float_path, threads), held_crops)
        cal_feeds = graph_io.calibration_feeds(cal_crops)
        float_task = task_score(str(float_path)) if task_score else None
        cache = work_dir / "calibration.json"

        def attempt(excluded: list[str]) -> tuple[Attempt, Path]:
            nodes = [n for n in candidates if n not in excluded] + list(force_nodes)
            path = quantize_nodes(float_path, work_dir / "int8.onnx", nodes, cal_feeds, cache)
            mean_cos, min_cos = embedding_cosine(reference, embed(cpu_session(path, threads), held_crops))
            retention = task_score(str(path)) / float_task if task_score and float_task else None
            ok = mean_cos >= min_cosine and (retention is None or retention >= min_retention)
            result = Attempt(list(excluded), mean_cos, min_cos, retention, ok)
            report.attempts.append(result)
            log(f"INT8 with {len(excluded)} node(s) excluded: embedding cosine {mean_cos:.5f} "
                f"(worst clip {min_cos:.5f})" + (f", task retention {retention:.4f}" if retention else ""))
            return result, path

        result, path = attempt([])
        if not result.passed and candidates and max_exclude_fraction > 0:
            log(f"below threshold: measuring leave-one-in sensitivity of {len(candidates)} nodes")

            def score(model_bytes: bytes) -> float:
                return embedding_cosine(reference, embed(cpu_session(model_bytes, threads), held_crops))[0]

            report.sensitivity = leave_one_in(float_model, candidates, str(cache), score)
            ranked = list(report.sensitivity)
            limit = max(1, math.ceil(max_exclude_fraction * len(candidates)))
            for k in sorted({min(2 ** i, limit) for i in range(limit.bit_length() + 1)}):  # 1, 2, 4, ..., limit
                if result.passed:
                    break
                result, path = attempt(ranked[:k])
        report.passed, report.excluded = result.passed, result.excluded
        if not result.passed and not force:
            raise QuantizationRefused(
                f"INT8 refused: embedding cosine {result.cosine:.5f} < {min_cosine}"
                + (f" or task retention {result.task_retention:.4f} < {min_retention}" if result.task_retention else "")
                + f" after excluding {len(result.excluded)} most sensitive node(s); fp32 model kept, "
                "no INT8 file written (--force writes it anyway)", report.to_dict())
        report.forced = not result.passed
        report.quantized_nodes = quantized_nodes(onnx.load(path))
        if tensorrt_path is not None:
            nodes = [n for n in candidates if n not in result.excluded] + list(force_nodes)
            trt = quantize_nodes(float_path, work_dir / "int8.tensorrt.onnx", nodes, cal_feeds, cache, "tensorrt")
            cosine = embedding_cosine(reference, embed(cpu_session(trt, threads), held_crops))
            shutil.move(str(trt), tensorrt_path)
            report.tensorrt_variant = {"file": Path(tensorrt_path).name, "cosine": cosine[0],
                                       "cosine_min_clip": cosine[1], "activations": "int8 symmetric (zero point 0)"}
            log(f"TensorRT INT8 variant (symmetric activations): embedding cosine {cosine[0]:.5f}")
        out_path = Path(out_path)
        shutil.move(str(path), out_path.with_name(out_path.name + ".tmp"))
        out_path.with_name(out_path.name + ".tmp").replace(out_path)
        report.written = out_path.name
    return report
