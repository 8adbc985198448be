"""Task metrics and their confidence intervals: accuracy, equal error rate, raw pitch accuracy, event F1.

Every metric is a function of per-clip sufficient statistics (for accuracy: correct, count), so one
bootstrap over test clips gives every CI: resample clips, sum their statistics, score the sum.
EER is not a sum over clips; its bootstrap reweights trials by how often each clip was drawn.
mir_eval supplies the pitch and onset-matching definitions used by the MIREX evaluations.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

BOOTSTRAP = 1000
ONSET_COLLAR = 0.1  # seconds: a detected onset within this of a reference onset of its class is a hit
PITCH_TOLERANCE_CENTS = 50.0


def ratio(stats: np.ndarray) -> float:
    """Sum of column 0 over sum of column 1 (accuracy, raw pitch accuracy)."""
    return float(stats[..., 0].sum(-1) / max(stats[..., 1].sum(-1), 1e-12)) if stats.ndim == 2 else np.nan


def f1(stats: np.ndarray) -> float:
    """Event F1 from summed (tp, fp, fn)."""
    tp, fp, fn = stats.sum(axis=0)
    return float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn > 0 else 0.0


SCORERS: dict[str, Callable[[np.ndarray], float]] = {"accuracy": ratio, "raw_pitch": ratio, "event_f1": f1}


def bootstrap_ci(stats: np.ndarray, score: Callable[[np.ndarray], float] = ratio, rounds: int = BOOTSTRAP,
                 seed: int = 0) -> tuple[float, float]:
    """95 % CI of ``score`` over clips resampled with replacement. stats: (clips, k)."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(stats), (rounds, len(stats)))
    values = [score(stats[d]) for d in draws]
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


# ---------------------------------------------------------------- pitch
def midi_to_hz(midi) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, np.float64) - 69.0) / 12.0)


def raw_pitch_accuracy(ref_hz: np.ndarray, est_hz: np.ndarray, cents: float = PITCH_TOLERANCE_CENTS) -> float:
    """Share of reference-voiced frames (ref_hz > 0) whose estimate is within ``cents`` (mir_eval's RPA)."""
    from mir_eval.melody import hz2cents
    from mir_eval.melody import raw_pitch_accuracy as rpa

    ref_voiced = (ref_hz > 0).astype(float)
    return float(rpa(ref_voiced, hz2cents(ref_hz), (est_hz > 0).astype(float), hz2cents(np.abs(est_hz)),
                     cent_tolerance=cents))


def pitch_stats(ref_hz: np.ndarray, est_hz: np.ndarray, cents: float = PITCH_TOLERANCE_CENTS) -> np.ndarray:
    """(hits, voiced frames) of one clip, so that summing clips and dividing gives the RPA of all."""
    voiced = ref_hz > 0
    return np.array([raw_pitch_accuracy(ref_hz, est_hz, cents) * voiced.sum(), voiced.sum()], np.float64)


# ---------------------------------------------------------------- events
def frames_to_events(labels: np.ndarray, times: np.ndarray, background: int = 0) -> list[tuple[float, int]]:
    """(onset_s, class) of each run of one non-background class; a run starts half a hop before its first
    frame time. labels, times: (K,) at a fixed hop."""
    hop = float(times[1] - times[0]) if times.size > 1 else 0.0
    found, previous = [], background
    for t, label in zip(times, labels):
        if label != background and label != previous:
            found.append((float(t) - hop / 2, int(label)))
        previous = label
    return found


def event_stats(reference: list[tuple[float, int]], estimate: list[tuple[float, int]],
                collar: float = ONSET_COLLAR) -> np.ndarray:
    """(tp, fp, fn) of one clip: per class, a one-to-one matching of onsets within ``collar``."""
    from mir_eval.util import match_events

    tp = fp = fn = 0
    for label in {c for _, c in reference} | {c for _, c in estimate}:
        ref = np.array([t for t, c in reference if c == label])
        est = np.array([t for t, c in estimate if c == label])
        hits = len(match_events(ref, est, collar)) if ref.size and est.size else 0
        tp, fp, fn = tp + hits, fp + est.size - hits, fn + ref.size - hits
    return np.array([tp, fp, fn], np.float64)


# ---------------------------------------------------------------- verification
def eer(scores: np.ndarray, targets: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Equal error rate: where the miss rate of target trials equals the false-alarm rate of non-target
    trials as the threshold sweeps the scores (linear interpolation between the two nearest points)."""
    weights = np.ones_like(scores, dtype=np.float64) if weights is None else weights.astype(np.float64)
    order = np.argsort(-scores, kind="stable")
    t, w = targets[order].astype(bool), weights[order]
    hits = np.concatenate([[0.0], np.cumsum(w * t)])  # accepted targets, threshold just below each score
    false = np.concatenate([[0.0], np.cumsum(w * ~t)])
    miss, fa = 1.0 - hits / hits[-1], false / false[-1]
    k = int(np.argmax(miss <= fa))  # first threshold where misses no longer exceed false alarms
    if k == 0:
        return float(miss[0] + fa[0]) / 2
    d0, d1 = miss[k - 1] - fa[k - 1], miss[k] - fa[k]
    a = d0 / (d0 - d1) if d0 != d1 else 0.5
    return float((1 - a) * (miss[k - 1] + fa[k - 1]) / 2 + a * (miss[k] + fa[k]) / 2)


def eer_ci(scores: np.ndarray, targets: np.ndarray, pairs: np.ndarray, clips: int, rounds: int = BOOTSTRAP,
           seed: int = 0) -> tuple[float, float]:
    """95 % CI of the EER with test clips resampled: a trial (i, j) counts n_i * n_j times."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        n = np.bincount(rng.integers(0, clips, clips), minlength=clips)
        weights = n[pairs[:, 0]] * n[pairs[:, 1]]
        keep = weights > 0
        if targets[keep].any() and (~targets[keep]).any():
            values.append(eer(scores[keep], targets[keep], weights[keep]))
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))
