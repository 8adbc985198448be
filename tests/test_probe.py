"""The probing protocol on synthetic features: learns what is there, finds the right layer, is
near chance on noise, and gives a CI around the score."""

import numpy as np
import pytest

from usad.bench.frame_probe import frame_probe
from usad.bench.probe import clip_probe


def run_probe(data, labels, splits, seeds=5):
    """The clean-test result of the probe of the data's kind."""
    return (frame_probe if "frames" in data else clip_probe)(data, labels, splits, seeds)["clean"]


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
    assert result.layer == 1 and result.pooling == "frame" and result.protocol == "best layer"
    assert result.score > 0.95
    assert result.n_test == 20 * k


def test_probe_needs_every_split():
    data, labels, splits = _clip_data()
    with pytest.raises(ValueError, match="train, val and test"):
        run_probe(data, labels, np.where(splits == "val", "train", splits))




def test_weighted_sum_probe_wins_when_the_signal_is_spread_over_layers():
    rng = np.random.default_rng(0)
    n, k, layers, dim = 60, 20, 4, 6
    labels = rng.integers(0, 3, (n, k))
    frames = rng.standard_normal((n, k, layers, dim)).astype(np.float32)
    for layer in (1, 2, 3):  # each layer carries the label, each with its own noise: the sum beats any one
        frames[:, :, layer, 0] += 0.8 * labels
    labels[:, :2] = -1  # unscored frames (f0's unvoiced)
    splits = np.array(["train"] * 30 + ["val"] * 10 + ["test"] * 20)
    noisy = frames[40:] + rng.standard_normal(frames[40:].shape).astype(np.float32)
    results = frame_probe({"frames": frames}, labels, splits, seeds=2, tests={"snr0": ({"frames": noisy}, labels[40:])})
    clean = results["clean"]
    assert clean.protocol == "weighted sum" and clean.layer == "weighted"
    assert clean.val_by_protocol["weighted sum"] >= clean.val_by_protocol["best layer"]
    assert clean.score > 0.6 and clean.n_test == 20 * (k - 2)
    assert results["snr0"].score < clean.score


def test_verification_probe_separates_speakers_it_never_saw():
    from usad.bench.verification import trials, verification_probe

    rng = np.random.default_rng(0)
    speakers = np.repeat(np.arange(24), 8)
    centers = rng.standard_normal((24, 3, 12))
    mean = (centers[speakers] * np.array([0.0, 2.0, 0.5])[None, :, None] + rng.standard_normal((192, 3, 12)))
    splits = np.where(speakers < 12, "train", np.where(speakers < 16, "val", "test"))
    groups = np.where(speakers % 2 == 0, "a", "b")
    result = verification_probe({"mean": mean.astype(np.float32), "std": np.ones_like(mean, np.float32)}, speakers,
                                splits, groups, seeds=2)["clean"]
    assert result.layer == 1 and result.metric == "eer"
    assert result.score > 0.85 and result.ci_low <= result.score + 0.05
    pairs, targets = trials(np.array(["a", "a", "b", "a"]), np.array([0, 0, 0, 1]))
    assert pairs.tolist() == [[0, 1], [0, 3], [1, 3]] and targets.tolist() == [True, False, False]
