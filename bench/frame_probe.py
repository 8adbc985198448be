"""Frame-task probes: a linear softmax classifier on frozen per-frame features, two ways.

* best layer: one layer, chosen on validation (every layer at one L2 strength, then the L2 grid on
  the two best), as for clip tasks;
* weighted sum (SUPERB): a softmax-weighted sum of every layer, weights learned with the classifier.

Every layer is standardised on training frames first. Both are fitted full-batch with L-BFGS (the
problem is small and convex, or nearly); the protocol with the better validation score gives the
task score, and the other's validation score is kept. Then ``seeds`` fits on 90 % subsamples of the
training clips, scored on the test clips of every condition, CI by bootstrapping test clips.
Frames labelled -1 (f0: unvoiced) are neither trained on nor scored.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from usad.bench.metrics import SCORERS, bootstrap_ci
from usad.bench.probe import ProbeResult, check_splits, subsample

L2_GRID = (1e-4, 1e-3, 1e-2)
MAX_ITER = 60
MAX_TRAIN_FRAMES = 20_000

Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (predicted classes (n, K), row index (n,)) -> stats


def accuracy_scorer(labels: np.ndarray) -> Scorer:
    """Per clip (correct labelled frames, labelled frames) against ``labels`` (N, K) of every row."""
    def score(pred: np.ndarray, index: np.ndarray) -> np.ndarray:
        ref = labels[index]
        scored = ref >= 0
        return np.stack([((pred == ref) & scored).sum(1), scored.sum(1)], axis=1).astype(np.float64)
    return score


def _fit(x: torch.Tensor, y: torch.Tensor, classes: int, layer: int | None, l2: float, seed: int):
    """x: (F, L, D) standardised frames, y: (F,). Returns (layer weights or None, linear layer)."""
    torch.manual_seed(seed)
    n_layers, dim = x.shape[1], x.shape[2]
    logits = torch.zeros(n_layers, requires_grad=layer is None)
    linear = torch.nn.Linear(dim, classes)
    torch.nn.init.zeros_(linear.weight)
    params = [*linear.parameters(), *([logits] if layer is None else [])]
    optimizer = torch.optim.LBFGS(params, lr=1.0, max_iter=MAX_ITER, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(linear(_mix(x, logits, layer)), y) + l2 * linear.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return logits.detach(), linear


def _mix(x: torch.Tensor, logits: torch.Tensor, layer: int | None) -> torch.Tensor:
    return x[:, layer] if layer is not None else torch.einsum("fld,l->fd", x, logits.softmax(0))


class _Frames:
    """Standardised frames of some clips, flattened, with the labelled ones marked."""

    def __init__(self, frames: np.ndarray, mean: torch.Tensor, std: torch.Tensor):
        self.shape = frames.shape[:2]
        self.x = (torch.from_numpy(frames.reshape(-1, *frames.shape[2:]).astype(np.float32)) - mean) / std

    def predict(self, logits, linear, layer) -> np.ndarray:
        with torch.no_grad():
            return linear(_mix(self.x, logits, layer)).argmax(1).numpy().reshape(self.shape)


def frame_probe(data: dict[str, np.ndarray], labels: np.ndarray, splits: np.ndarray, seeds: int = 5,
                tests: dict[str, tuple[dict, np.ndarray]] | None = None, scorer: Scorer | None = None,
                metric: str = "accuracy", classes: int | None = None) -> dict[str, ProbeResult]:
    """data: {"frames": (N, K, L, D)}; labels: (N, K) class ids, -1 not scored; tests: condition ->
    (features of the test rows, their labels), clean being the test side of ``data``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as for the sklearn probes: on a shared machine one thread was 5x faster here
    try:
        with torch.no_grad():
            return _frame_probe(data, labels, splits, seeds, tests or {}, scorer or accuracy_scorer(labels), metric,
                                classes or int(labels.max()) + 1)
    finally:
        torch.set_num_threads(threads)


def _frame_probe(data, labels, splits, seeds, tests, scorer, metric, classes):
    train, val, test = check_splits(splits)
    frames = data["frames"]
    if train.size * frames.shape[1] > MAX_TRAIN_FRAMES:  # bounded memory: a fixed subset of training clips
        train = np.sort(np.random.default_rng(0).choice(train, MAX_TRAIN_FRAMES // frames.shape[1], replace=False))
    flat = frames[train].reshape(-1, *frames.shape[2:])
    mask = labels[train].reshape(-1) >= 0
    mean = torch.from_numpy(flat[mask].mean(0, dtype=np.float64).astype(np.float32))
    std = torch.from_numpy(flat[mask].std(0, dtype=np.float64).astype(np.float32) + 1e-5)
    score_of = SCORERS[metric]
    train_x = _Frames(frames[train], mean, std)
    train_y = torch.from_numpy(labels[train].reshape(-1))

    def fit_on(clips: np.ndarray, layer, l2, seed=0):
        """Fit on the frames of ``clips`` (a subset of ``train``) that carry a label."""
        keep = torch.from_numpy(np.isin(np.repeat(train, frames.shape[1]), clips)) & (train_y >= 0)
        with torch.enable_grad():
            return _fit(train_x.x[keep], train_y[keep], classes, layer, l2, seed)

    val_x = _Frames(frames[val], mean, std)

    def val_score(layer, l2) -> float:
        logits, linear = fit_on(train, layer, l2)
        return score_of(scorer(val_x.predict(logits, linear, layer), val))

    n_layers = frames.shape[2]
    by_layer = sorted(((val_score(layer, 1e-3), layer) for layer in range(n_layers)), reverse=True)
    best = {"best layer": max((val_score(layer, l2), l2, layer) for _, layer in by_layer[:2] for l2 in L2_GRID)}
    if n_layers > 1:
        best["weighted sum"] = max((val_score(None, l2), l2, None) for l2 in L2_GRID)
    protocol = max(best, key=lambda p: best[p][0])
    best_val, l2, layer = best[protocol]
    choice = {"layer": "weighted" if layer is None else layer, "pooling": "frame", "C": 1.0 / l2,
              "val_score": best_val, "metric": metric, "protocol": protocol}

    conditions = {"clean": (frames[test], labels[test]), **{c: (d["frames"], y) for c, (d, y) in tests.items()}}
    inputs = {c: _Frames(f, mean, std) for c, (f, _) in conditions.items()}
    stats = {c: [] for c in conditions}
    for seed in range(seeds):
        logits, linear = fit_on(subsample(train, seed), layer, l2, seed)
        for c, x in inputs.items():
            stats[c].append(scorer(x.predict(logits, linear, layer), test))
    majority = int(np.bincount(labels[train][labels[train] >= 0]).argmax())
    results = {}
    for c, per_seed in stats.items():
        per_seed = np.stack(per_seed)  # (seeds, clips, k)
        low, high = bootstrap_ci(per_seed.mean(0), score_of)
        chance = score_of(scorer(np.full(conditions[c][1].shape, majority), test))
        results[c] = ProbeResult(float(np.mean([score_of(s) for s in per_seed])), low, high,
                                 [round(score_of(s), 4) for s in per_seed], n_train=int(mask.sum()),
                                 n_test=int((conditions[c][1] >= 0).sum()), chance=chance,
                                 val_by_protocol={p: v[0] for p, v in best.items()}, **choice)
    return results
