"""Each metric against a case small enough to compute by hand, and the bootstrap CIs around them."""

import numpy as np
import pytest

from usad.bench.metrics import (
    bootstrap_ci,
    eer,
    eer_ci,
    event_stats,
    f1,
    frames_to_events,
    midi_to_hz,
    pitch_stats,
    ratio,
    raw_pitch_accuracy,
)


def test_eer_where_misses_equal_false_alarms():
    # Sorted: 0.9 T, 0.8 T, 0.7 N, 0.3 T, 0.2 N, 0.1 N. Accepting the top three: 1 of 3 targets
    # missed, 1 of 3 non-targets accepted, so EER = 1/3.
    scores = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1])
    targets = np.array([True, True, True, False, False, False])
    assert eer(scores, targets) == pytest.approx(1 / 3)
    assert eer(np.array([0.9, 0.8, 0.2, 0.1]), np.array([True, True, False, False])) == pytest.approx(0.0)
    assert eer(np.array([0.1, 0.2, 0.8, 0.9]), np.array([True, True, False, False])) == pytest.approx(1.0)
    # Weights count trials several times: the 0.8 target three times leaves 1 of 5 targets below 0.7.
    assert eer(scores, targets, np.array([1, 3, 1, 1, 1, 1])) == pytest.approx(0.2)


def test_eer_ci_brackets_a_noisy_estimate():
    rng = np.random.default_rng(0)
    speakers = np.repeat(np.arange(10), 6)
    emb = rng.standard_normal((10, 8))[speakers] + 0.8 * rng.standard_normal((60, 8))
    i, j = np.triu_indices(60, 1)
    pairs = np.stack([i, j], 1)
    scores = np.einsum("td,td->t", emb[i], emb[j]) / np.linalg.norm(emb[i], axis=1) / np.linalg.norm(emb[j], axis=1)
    targets = speakers[i] == speakers[j]
    value = eer(scores, targets)
    low, high = eer_ci(scores, targets, pairs, 60, rounds=200)
    assert 0.0 < value < 0.3 and low < value < high and high - low < 0.3


def test_raw_pitch_accuracy_counts_voiced_frames_within_50_cents():
    ref = np.array([440.0, 440.0, 0.0, 220.0])
    est = np.array([440 * 2 ** (40 / 1200), 440 * 2 ** (60 / 1200), 300.0, 110.0])  # 40 c, 60 c, -, octave
    assert raw_pitch_accuracy(ref, est) == pytest.approx(1 / 3)
    assert pitch_stats(ref, est).tolist() == pytest.approx([1.0, 3.0])
    assert midi_to_hz([69, 81]).tolist() == pytest.approx([440.0, 880.0])


def test_event_f1_matches_onsets_per_class_within_the_collar():
    reference = [(0.5, 1), (1.0, 2), (2.0, 1)]
    estimate = [(0.55, 1), (1.3, 2), (2.05, 2), (3.0, 1)]  # one hit; 2.05 is near a class-1 onset only
    stats = event_stats(reference, estimate)
    assert stats.tolist() == [1, 3, 2]
    assert f1(stats[None]) == pytest.approx(2 / 7)
    assert f1(np.array([[0, 0, 0]])) == 0.0


def test_frames_become_events_at_run_starts():
    times = (np.arange(8) + 0.5) * 0.1
    events = frames_to_events(np.array([0, 0, 1, 1, 0, 2, 2, 1]), times, background=0)
    assert [(round(t, 3), c) for t, c in events] == [(0.2, 1), (0.5, 2), (0.7, 1)]


def test_bootstrap_ci_brackets_the_mean():
    stats = np.stack([np.r_[np.ones(70), np.zeros(30)], np.ones(100)], axis=1)
    low, high = bootstrap_ci(stats)
    assert ratio(stats) == pytest.approx(0.7)
    assert low < 0.7 < high and high - low < 0.25
