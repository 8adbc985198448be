"""Speaker-verification probe: a linear projection learned on training speakers, cosine scoring of
trials among speakers it never saw, equal error rate.

Per layer and pooling: standardise, then LDA (scikit-learn, shrinkage chosen by Ledoit-Wolf) fitted
to the training speakers; embeddings are the LDA projections, L2-normalised; a trial's score is their
cosine. The layer (mean pooling, every layer) and then the pooling (two best layers) are chosen on
the validation speakers' EER. Trials are all pairs of clips of one source corpus (cross-corpus pairs
would be told apart by the channel alone). Seeds refit on 90 % subsamples of the training clips; the
score is 1 - EER (the accuracy at the EER threshold), its CI from resampling test clips.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from usad.bench.metrics import eer, eer_ci
from usad.bench.probe import ProbeResult, check_splits, pooled, subsample


def trials(groups: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (i < j) within one group: (pairs (T, 2), is-target (T,))."""
    i, j = np.triu_indices(groups.size, k=1)
    same = groups[i] == groups[j]
    pairs = np.stack([i[same], j[same]], axis=1)
    return pairs, labels[pairs[:, 0]] == labels[pairs[:, 1]]


def _embed(x_train, y_train, x):
    model = make_pipeline(StandardScaler(), LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto"))
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")
        model.fit(x_train, y_train)
        z = model.transform(x)
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def _scores(z: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    return np.einsum("td,td->t", z[pairs[:, 0]], z[pairs[:, 1]])


def verification_probe(data: dict[str, np.ndarray], labels: np.ndarray, splits: np.ndarray, groups: np.ndarray,
                       seeds: int = 5, tests: dict[str, tuple[dict, np.ndarray]] | None = None
                       ) -> dict[str, ProbeResult]:
    """data: {"mean", "std"} (N, L, D); labels: (N,) speaker ids; groups: (N,) source corpus per row;
    tests: condition -> (features of the test rows, their labels)."""
    train, val, test = check_splits(splits)
    val_pairs, val_targets = trials(groups[val], labels[val])
    test_pairs, test_targets = trials(groups[test], labels[test])

    def val_eer(layer: int, pooling: str) -> float:
        x = pooled(data, layer, pooling)
        return eer(_scores(_embed(x[train], labels[train], x[val]), val_pairs), val_targets)

    by_layer = sorted((val_eer(layer, "mean"), layer) for layer in range(data["mean"].shape[1]))
    best_eer, layer, pooling = min((val_eer(layer, p), layer, p) for _, layer in by_layer[:2]
                                   for p in ("mean", "mean+std"))
    choice = {"layer": layer, "pooling": pooling, "C": 0.0, "val_score": 1.0 - best_eer, "metric": "eer",
              "protocol": "LDA + cosine"}
    conditions = {"clean": {k: v[test] for k, v in data.items()}, **{c: d for c, (d, _) in (tests or {}).items()}}
    x = pooled(data, layer, pooling)
    scores = {c: [] for c in conditions}
    for seed in range(seeds):
        sub = subsample(train, seed)
        for c, d in conditions.items():
            scores[c].append(_scores(_embed(x[sub], labels[sub], pooled(d, layer, pooling)), test_pairs))
    results = {}
    for c, per_seed in scores.items():
        mean_scores = np.mean(per_seed, axis=0)
        low, high = eer_ci(mean_scores, test_targets, test_pairs, test.size)
        seed_scores = [1.0 - eer(s, test_targets) for s in per_seed]
        results[c] = ProbeResult(float(np.mean(seed_scores)), 1.0 - high, 1.0 - low,
                                 [round(s, 4) for s in seed_scores], n_train=int(train.size),
                                 n_test=int(test.size), chance=0.5, **choice)
    return results
