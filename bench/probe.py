"""The probing protocol: linear probes on frozen features, chosen on validation, scored on test.

Clip tasks: per-layer pooled features (mean, or mean+std), a standardised scikit-learn logistic
regression. The layer is chosen first (mean pooling, C=1, every layer), then pooling and C on the
two best layers, all on the validation split of the training side. Frame tasks: the same linear
classifier on single frames. The chosen probe is then trained ``seeds`` times, each on a
different 90 % subsample of the training split with its own solver seed, and scored on test.
The score is mean test accuracy over seeds; the 95 % CI bootstraps test items (their accuracy
averaged over seeds).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

C_GRID = (0.01, 0.1, 1.0, 10.0)
SUBSAMPLE = 0.9
BOOTSTRAP = 1000
MAX_FRAMES_FOR_SELECTION = 20_000


@dataclass
class ProbeResult:
    score: float  # mean test accuracy over seeds
    ci_low: float
    ci_high: float
    seed_scores: list[float]
    layer: int
    pooling: str
    C: float
    val_score: float
    chance: float  # accuracy of always predicting the training majority class on test
    n_train: int
    n_test: int

    def to_dict(self) -> dict:
        return asdict(self)


def _fit(x: np.ndarray, y: np.ndarray, C: float, seed: int = 0):
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=300, random_state=seed))
    # One BLAS thread: on a shared machine threaded BLAS made these small fits 30x slower.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(x, y)
    return probe


def _features(data: dict[str, np.ndarray], layer: int, pooling: str) -> np.ndarray:
    """(N, D) or (N, 2D) clip features, or (N, K, D) frame features of one layer."""
    if "frames" in data:
        return data["frames"][:, :, layer].astype(np.float32)
    mean = data["mean"][:, layer].astype(np.float32)
    return mean if pooling == "mean" else np.concatenate([mean, data["std"][:, layer].astype(np.float32)], axis=1)


def _flatten(x: np.ndarray, y: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``index`` of clip features, or all frames of clips ``index`` for frame features."""
    if x.ndim == 3:
        return x[index].reshape(-1, x.shape[-1]), y[index].reshape(-1)
    return x[index], y[index]


def bootstrap_ci(correct: np.ndarray, rounds: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """95 % CI of the mean of per-item correctness (items, averaged over seeds)."""
    rng = np.random.default_rng(seed)
    means = correct[rng.integers(0, correct.size, (rounds, correct.size))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def run_probe(data: dict[str, np.ndarray], labels: np.ndarray, splits: np.ndarray, seeds: int = 5) -> ProbeResult:
    """Select a probe on val and score it on test.

    data: {"mean", "std"} (N, L, D) for clip tasks or {"frames"} (N, K, L, D) for frame tasks.
    labels: (N,) class ids, or (N, K) frame class ids. splits: (N,) of "train" / "val" / "test".
    """
    train, val, test = (np.flatnonzero(splits == s) for s in ("train", "val", "test"))
    if min(train.size, val.size, test.size) == 0:
        raise ValueError(f"a task needs train, val and test rows (got {train.size}/{val.size}/{test.size})")
    frame_task = "frames" in data
    n_layers = (data["frames"] if frame_task else data["mean"]).shape[-2]
    rng = np.random.default_rng(0)
    select = train
    if frame_task and train.size * labels.shape[1] > MAX_FRAMES_FOR_SELECTION:
        select = np.sort(rng.choice(train, MAX_FRAMES_FOR_SELECTION // labels.shape[1], replace=False))

    def val_score(layer: int, pooling: str, C: float) -> float:
        x = _features(data, layer, pooling)
        probe = _fit(*_flatten(x, labels, select), C)
        xv, yv = _flatten(x, labels, val)
        return float((probe.predict(xv) == yv).mean())

    by_layer = sorted(((val_score(layer, "mean", 1.0), layer) for layer in range(n_layers)), reverse=True)
    poolings = ("mean",) if frame_task else ("mean", "mean+std")
    candidates = [(val_score(layer, pooling, C), -layer, pooling, C)
                  for _, layer in by_layer[:2] for pooling in poolings for C in C_GRID]
    best_val, neg_layer, pooling, C = max(candidates)
    layer = -neg_layer

    x = _features(data, layer, pooling)
    xt, yt = _flatten(x, labels, test)
    correct = np.zeros((seeds, yt.size))
    for seed in range(seeds):
        sub = np.sort(np.random.default_rng(seed).choice(train, int(round(SUBSAMPLE * train.size)), replace=False))
        probe = _fit(*_flatten(x, labels, sub), C, seed)
        correct[seed] = probe.predict(xt) == yt
    seed_scores = correct.mean(axis=1)
    per_item = correct.mean(axis=0)
    if frame_task:  # frames of one clip are not independent: resample whole clips
        per_item = per_item.reshape(test.size, -1).mean(axis=1)
    low, high = bootstrap_ci(per_item)
    train_labels = labels[train].reshape(-1)
    majority = np.bincount(train_labels).argmax()
    return ProbeResult(float(seed_scores.mean()), low, high, [round(float(s), 4) for s in seed_scores], int(layer),
                       pooling, float(C), best_val, float((yt == majority).mean()), int(train_labels.size),
                       int(yt.size))
