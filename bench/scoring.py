"""One probe per task kind, scored with the task's metric: the glue between manifests and probes.

clip tasks: ``probe.clip_probe`` (accuracy); verification: ``verification.verification_probe``
(1 - EER); frame tasks: ``frame_probe.frame_probe`` with a per-clip scorer of the task's metric
(frame accuracy, raw pitch accuracy, event F1).
"""

from __future__ import annotations

import numpy as np

from usad.bench import metrics
from usad.bench.embeddings import DEFAULT_FRAME_HOP
from usad.bench.frame_probe import Scorer, accuracy_scorer, frame_probe
from usad.bench.probe import ProbeResult, clip_probe
from usad.bench.verification import verification_probe


def _pitch_scorer(manifest: dict, labels: np.ndarray) -> Scorer:
    class_hz = metrics.midi_to_hz([int(c) for c in manifest["classes"]])

    def score(pred: np.ndarray, index: np.ndarray) -> np.ndarray:
        ref = labels[index]
        ref_hz = np.where(ref >= 0, class_hz[np.maximum(ref, 0)], 0.0)
        return np.stack([metrics.pitch_stats(r, e) for r, e in zip(ref_hz, class_hz[pred])])
    return score


def _event_scorer(manifest: dict, times: np.ndarray) -> Scorer:
    classes = {c: i for i, c in enumerate(manifest["classes"])}
    background = classes[manifest["background"]]
    reference = [[(start, classes[label]) for start, _, label in r["segments"]] for r in manifest["rows"]]

    def score(pred: np.ndarray, index: np.ndarray) -> np.ndarray:
        return np.stack([metrics.event_stats(reference[i], metrics.frames_to_events(p, times, background))
                         for p, i in zip(pred, index)])
    return score


def _scorer(manifest: dict, labels: np.ndarray) -> Scorer:
    if manifest["metric"] == "raw_pitch":
        return _pitch_scorer(manifest, labels)
    if manifest["metric"] == "event_f1":
        hop = manifest.get("frame_hop") or DEFAULT_FRAME_HOP
        return _event_scorer(manifest, (np.arange(labels.shape[1]) + 0.5) * hop)  # as embeddings.probe_times
    return accuracy_scorer(labels)


def probe(manifest: dict, data: dict[str, np.ndarray], seeds: int,
          tests: dict[str, dict] | None = None) -> dict[str, ProbeResult]:
    """Probe one task: ``data`` covers every row of the manifest; ``tests`` maps a condition to the
    features of the manifest's test rows in that condition."""
    rows = manifest["rows"]
    splits = np.array([r["split"] for r in rows])
    test = splits == "test"
    kind = manifest["kind"]
    if kind == "frame":
        labels = data["labels"]
        noisy = {c: (d, labels[test]) for c, d in (tests or {}).items()}
        return frame_probe(data, labels, splits, seeds, noisy, _scorer(manifest, labels), manifest["metric"],
                           len(manifest["classes"]))
    index = {c: i for i, c in enumerate(manifest["classes"])}
    labels = np.array([index[r["label"]] for r in rows])
    noisy = {c: (d, labels[test]) for c, d in (tests or {}).items()}
    if kind == "verification":
        groups = np.array([r.get("corpus", "") for r in rows])
        return verification_probe(data, labels, splits, groups, seeds, noisy)
    return clip_probe(data, labels, splits, seeds, noisy)
