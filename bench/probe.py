"""The probing protocol for clip tasks: linear probes on frozen features, chosen on validation, scored on test.

Per-layer pooled features (mean, or mean+std), a standardised scikit-learn logistic regression. The
layer is chosen first (mean pooling, C=1, every layer), then pooling and C on the two best layers,
all on the clean validation split. The chosen probe is then trained ``seeds`` times, each on a
different 90 % subsample of the training split with its own solver seed, and scored on the test
split of every condition (clean and noisy: the same probe). The score is the mean over seeds; the
95 % CI bootstraps test items (their outcome averaged over seeds).
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

from usad.bench.metrics import bootstrap_ci

C_GRID = (0.01, 0.1, 1.0, 10.0)
SUBSAMPLE = 0.9


@dataclass
class ProbeResult:
    score: float  # the task metric (accuracy, 1 - EER, raw pitch accuracy, event F1), mean over seeds
    ci_low: float
    ci_high: float
    seed_scores: list[float]
    layer: int | str  # the chosen layer, or "weighted" for the learned weighted sum of all layers
    pooling: str
    C: float  # inverse L2 strength of the chosen probe
    val_score: float
    chance: float  # the metric of always predicting the training majority class on test
    n_train: int
    n_test: int
    metric: str = "accuracy"
    protocol: str = "best layer"
    val_by_protocol: dict | None = None  # frame tasks: best validation score of each protocol

    def to_dict(self) -> dict:
        return asdict(self)


def check_splits(splits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    train, val, test = (np.flatnonzero(splits == s) for s in ("train", "val", "test"))
    if min(train.size, val.size, test.size) == 0:
        raise ValueError(f"a task needs train, val and test rows (got {train.size}/{val.size}/{test.size})")
    return train, val, test


def subsample(train: np.ndarray, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(train, int(round(SUBSAMPLE * train.size)), replace=False))


def pooled(data: dict[str, np.ndarray], layer: int, pooling: str) -> np.ndarray:
    """(N, D) or (N, 2D) clip features of one layer."""
    mean = data["mean"][:, layer].astype(np.float32)
    return mean if pooling == "mean" else np.concatenate([mean, data["std"][:, layer].astype(np.float32)], axis=1)


def _fit(x: np.ndarray, y: np.ndarray, C: float, seed: int = 0):
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=300, random_state=seed))
    # One BLAS thread: on a shared machine threaded BLAS made these small fits 30x slower.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(x, y)
    return probe


def summarize(correct: np.ndarray, n_train: int, choice: dict, chance: float) -> ProbeResult:
    """correct: (seeds, items) outcomes in [0, 1] of one test condition."""
    seed_scores = correct.mean(axis=1)
    low, high = bootstrap_ci(np.stack([correct.mean(axis=0), np.ones(correct.shape[1])], axis=1))
    return ProbeResult(float(seed_scores.mean()), low, high, [round(float(s), 4) for s in seed_scores],
                       n_train=n_train, n_test=int(correct.shape[1]), chance=chance, **choice)


def clip_probe(data: dict[str, np.ndarray], labels: np.ndarray, splits: np.ndarray, seeds: int = 5,
               tests: dict[str, tuple[dict, np.ndarray]] | None = None) -> dict[str, ProbeResult]:
    """Select a probe on val and score it on test, per condition.

    data: {"mean", "std"} (N, L, D) of every row, clean. labels: (N,) class ids. splits: (N,).
    tests: condition -> (features of its test rows, their labels); "clean" is the test side of ``data``.
    """
    train, val, test = check_splits(splits)
    n_layers = data["mean"].shape[1]

    def val_score(layer: int, pooling: str, C: float) -> float:
        x = pooled(data, layer, pooling)
        return float((_fit(x[train], labels[train], C).predict(x[val]) == labels[val]).mean())

    by_layer = sorted(((val_score(layer, "mean", 1.0), layer) for layer in range(n_layers)), reverse=True)
    candidates = [(val_score(layer, pooling, C), -layer, pooling, C)
                  for _, layer in by_layer[:2] for pooling in ("mean", "mean+std") for C in C_GRID]
    best_val, neg_layer, pooling, C = max(candidates)
    choice = {"layer": -neg_layer, "pooling": pooling, "C": float(C), "val_score": best_val}

    conditions = {"clean": ({k: v[test] for k, v in data.items()}, labels[test]), **(tests or {})}
    x = pooled(data, choice["layer"], pooling)
    features = {c: pooled(d, choice["layer"], pooling) for c, (d, _) in conditions.items()}
    correct = {c: np.zeros((seeds, y.size)) for c, (_, y) in conditions.items()}
    for seed in range(seeds):
        sub = subsample(train, seed)
        probe = _fit(x[sub], labels[sub], C, seed)
        for c, (_, y) in conditions.items():
            correct[c][seed] = probe.predict(features[c]) == y
    majority = np.bincount(labels[train]).argmax()
    return {c: summarize(correct[c], int(train.size), choice, float((y == majority).mean()))
            for c, (_, y) in conditions.items()}
