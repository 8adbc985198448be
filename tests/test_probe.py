"""The probing protocol on synthetic features: learns what is there, finds the right layer, is
near chance on noise, and gives a CI around the score."""

import numpy as np
import pytest

from usad.bench.probe import bootstrap_ci, run_probe


def _clip_data(n=240, layers=4, dim=16, informative=2, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    mean = rng.standard_normal((n, layers, dim)).astype(np.float32)
    centers = rng.standard_normal((4, dim)) * 3
    mean[:, informative] += centers[labels]
    std = np.abs(rng.standard_normal((n, layers, dim))).astype(np.float32)
    splits = np.array(["train"] * (n // 2) + ["val"] * (n // 4) + ["test"] * (n - n // 2 - n // 4))
    return {"mean": mean, "std": std}, labels, splits


def test_probe_finds_informative_layer_and_scores_high():
    data, labels, splits = _clip_data()
    result = run_probe(data, labels, splits, seeds=3)
    assert result.layer == 2
    assert result.score > 0.9
    assert result.ci_low <= result.score <= result.ci_high
    assert len(result.seed_scores) == 3
    assert 0.15 < result.chance < 0.45


def test_probe_is_near_chance_on_noise():
    data, labels, splits = _clip_data()
    shuffled = np.random.default_rng(1).permutation(labels)
    result = run_probe(data, shuffled, splits, seeds=2)
    assert result.score < 0.45


def test_frame_probe_on_frame_features():
    rng = np.random.default_rng(0)
    n, k, layers, dim = 60, 20, 3, 8
    labels = rng.integers(0, 2, (n, k))
    frames = rng.standard_normal((n, k, layers, dim)).astype(np.float32)
    frames[:, :, 1, 0] += 4 * labels
    splits = np.array(["train"] * 30 + ["val"] * 10 + ["test"] * 20)
    result = run_probe({"frames": frames}, labels, splits, seeds=2)
    assert result.layer == 1 and result.pooling == "mean"
    assert result.score > 0.95
    assert result.n_test == 20 * k


def test_probe_needs_every_split():
    data, labels, splits = _clip_data()
    with pytest.raises(ValueError, match="train, val and test"):
        run_probe(data, labels, np.where(splits == "val", "train", splits))


def test_bootstrap_ci_brackets_the_mean():
    correct = np.r_[np.ones(70), np.zeros(30)]
    low, high = bootstrap_ci(correct)
    assert low < 0.7 < high and high - low < 0.25
