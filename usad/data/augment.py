"""On-the-fly augmentation of training crops: speed, gain, and cross-domain mixtures at a random SNR.

Off by default (every probability 0). Applied in the data workers to a decoded batch, with a random
generator keyed by the batch's place in the stream, so a resumed run draws the same augmentation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import soxr

from usad.config import SAMPLE_RATE


@dataclass
class AugmentConfig:
    mix_prob: float = 0.0  # chance that a crop gets a crop of another domain of the batch added
    mix_snr_db: list[float] = field(default_factory=lambda: [0.0, 20.0])  # of the crop over the added one
    gain_prob: float = 0.0
    gain_db: list[float] = field(default_factory=lambda: [-12.0, 6.0])
    speed_prob: float = 0.0  # resampled playback: tempo and pitch change together
    speed: list[float] = field(default_factory=lambda: [0.9, 1.1])

    @property
    def enabled(self) -> bool:
        return max(self.mix_prob, self.gain_prob, self.speed_prob) > 0


def _power(x: np.ndarray) -> float:
    return float(np.mean(x.astype(np.float64) ** 2)) + 1e-10


def augment_rows(rows: list[np.ndarray], domains: list[str], config: AugmentConfig,
                 rng: np.random.Generator) -> list[np.ndarray]:
    """Augmented copies of a batch's crops (each (S,) float32); a crop keeps at most its own length."""
    out = []
    for x in rows:
        if rng.random() < config.speed_prob:
            factor = rng.uniform(*config.speed)
            x = soxr.resample(x, SAMPLE_RATE, SAMPLE_RATE / factor)[: len(x)].astype(np.float32)
        if rng.random() < config.gain_prob:
            x = x * np.float32(10 ** (rng.uniform(*config.gain_db) / 20))
        out.append(np.clip(x, -1.0, 1.0))
    mixed = []
    for i, x in enumerate(out):
        partners = [j for j, d in enumerate(domains) if d != domains[i]]
        if partners and rng.random() < config.mix_prob:
            other = out[partners[rng.integers(len(partners))]][: len(x)]
            snr = rng.uniform(*config.mix_snr_db)
            scale = np.sqrt(_power(x) / (_power(other) * 10 ** (snr / 10)))
            x = x.copy()
            x[: len(other)] += np.float32(scale) * other
            x = np.clip(x, -1.0, 1.0)
        mixed.append(x)
    return mixed
