"""Training audio: corpus shards decoded into memory, and a deterministic batch sampler.

Every batch is a pure function of (seed, step, rank): resuming at step N reproduces the exact
data order of an uninterrupted run with no sampler state to save. Clips are drawn with
probability proportional to domain weight x duration (each second of a domain equally likely,
sound and music up-weighted), cropped at random to ``crop_seconds``, and drawn ``bucket_batches``
global batches at a time, sorted by length so that each batch pads little.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from usad.audio import SAMPLE_RATE
from usad.data.shards import iter_shard, read_manifest


@dataclass
class Corpus:
    clips: list[np.ndarray]  # (S,) float32 16 kHz
    domains: list[str]
    errors: list[str] = field(default_factory=list)  # clips skipped as undecodable, with reasons
    too_short: int = 0

    @property
    def seconds(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for clip, domain in zip(self.clips, self.domains):
            out[domain] = out.get(domain, 0.0) + len(clip) / SAMPLE_RATE
        return out


def _decode_shard(path: str) -> tuple[list[np.ndarray], list[str], list[str]]:
    errors: list[str] = []
    clips, domains = [], []
    for clip in iter_shard(path, errors=errors):
        clips.append(clip.audio)
        domains.append(clip.domain)
    return clips, domains, errors


def load_corpus(directories: list[str | Path], min_seconds: float = 0.1, workers: int = 4) -> Corpus:
    """Decode every shard listed in each directory's manifest; undecodable clips are skipped and counted."""
    paths = [str(Path(d) / s["path"]) for d in directories for s in read_manifest(d)["shards"]]
    if workers > 1 and len(paths) > 1:
        with ProcessPoolExecutor(min(workers, len(paths))) as pool:
            results = list(pool.map(_decode_shard, paths))
    else:
        results = [_decode_shard(p) for p in paths]
    corpus = Corpus([], [])
    for clips, domains, errors in results:
        corpus.errors.extend(errors)
        for clip, domain in zip(clips, domains):
            if len(clip) < min_seconds * SAMPLE_RATE:
                corpus.too_short += 1
                continue
            corpus.clips.append(clip)
            corpus.domains.append(domain)
    if not corpus.clips:
        raise ValueError(f"no usable clips in {', '.join(map(str, directories))}")
    return corpus


@dataclass
class Batch:
    waveforms: torch.Tensor  # (B, S) float32, zero-padded
    lengths: torch.Tensor  # (B,) int64
    clip_ids: np.ndarray  # (B,) index into the corpus
    starts: np.ndarray  # (B,) crop start sample


class BatchSampler:
    def __init__(self, corpus: Corpus, batch_size: int, crop_seconds: float, domain_weights: dict[str, float],
                 seed: int = 0, rank: int = 0, world: int = 1, bucket_batches: int = 8,
                 pad_multiple_seconds: float = 0.0):
        if batch_size % world:
            raise ValueError(f"global batch size {batch_size} is not divisible by {world} ranks")
        self.corpus, self.batch_size, self.seed = corpus, batch_size, seed
        self.rank, self.world, self.bucket_batches = rank, world, bucket_batches
        self.crop = int(crop_seconds * SAMPLE_RATE)
        self.pad_multiple = max(1, int(pad_multiple_seconds * SAMPLE_RATE))
        self.lengths = np.array([len(c) for c in corpus.clips], dtype=np.int64)
        unknown = sorted(set(corpus.domains) - set(domain_weights))
        if unknown:
            raise ValueError(f"domains {unknown} in the corpus have no entry in data.domain_weights")
        weight = np.array([domain_weights[d] for d in corpus.domains]) * self.lengths
        self.probs = weight / weight.sum()

    def _bucket(self, group: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``bucket_batches`` global batches (ids, starts, crop lengths), sorted by length, order shuffled."""
        rng = np.random.default_rng([self.seed, group])
        n = self.bucket_batches * self.batch_size
        ids = rng.choice(len(self.lengths), size=n, p=self.probs)
        crop_len = np.minimum(self.lengths[ids], self.crop)
        starts = (rng.random(n) * (self.lengths[ids] - crop_len + 1)).astype(np.int64)
        order = np.argsort(-crop_len, kind="stable").reshape(self.bucket_batches, self.batch_size)
        order = order[rng.permutation(self.bucket_batches)]
        return ids[order], starts[order], crop_len[order]

    def indices(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """This rank's share of global batch ``step``: clip ids, crop starts, crop lengths."""
        ids, starts, lens = self._bucket(step // self.bucket_batches)
        i = step % self.bucket_batches
        part = slice(self.rank, None, self.world)  # strided: every rank gets a similar length mix
        return ids[i, part], starts[i, part], lens[i, part]

    def batch(self, step: int) -> Batch:
        ids, starts, lens = self.indices(step)
        total = -(-int(lens.max()) // self.pad_multiple) * self.pad_multiple
        waveforms = np.zeros((len(ids), total), dtype=np.float32)
        for row, (i, s, n) in enumerate(zip(ids, starts, lens)):
            waveforms[row, :n] = self.corpus.clips[i][s:s + n]
        return Batch(torch.from_numpy(waveforms), torch.from_numpy(lens.astype(np.int64)), ids, starts)
