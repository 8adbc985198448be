"""Streaming training audio: corpus shards -> per-domain shuffled crops -> length-bucketed batches.

One DataLoader worker runs one *stream* (stream id = rank * workers + worker); a stream is a pure
function of (seed, stream id, its cursor), so batches never depend on timing:

    manifests ─► units (shard, part) per domain ─► permuted per epoch, unit k to stream k mod streams
      ─► tar read in order (local path, http(s) URL or pipe: command, via webdataset's gopen)
      ─► clips: header read; undecodable, too short, truncated or unreadable shards skipped and counted
      ─► crops: floor(len / crop) per clip (at least one), at random offsets
      ─► shuffle window per domain: the crops of ``shuffle_clips`` clips in a random order
      ─► mixer: each crop's domain drawn with p ~ weight x hours (each second of a domain equally likely)
      ─► bucket: ``bucket_batches`` batches' crops sorted by length, batch order shuffled
      ─► batches decoded one at a time (only each crop's span is decoded), optionally augmented,
         handed over as 16-bit PCM (half the bytes of float32 through shared memory and to the GPU)

A domain with fewer shards than streams splits each shard into interleaved parts, so every stream
reads every domain; a shard holding several domains is read by each of its domains' streams.
Memory per worker is bounded by the windows (compressed bytes of ``shuffle_clips`` clips per
domain) and one bucket of crop references, never by the corpus.

Resume is exact at every batch: each batch carries its stream's *cursor* (per domain: epoch, unit,
offset of the window start, window number, crops taken; the bucket number and batches emitted;
skip counters). All randomness is drawn from generators keyed by those counters, so restoring a
cursor re-reads one window per domain (no decoding) and continues with the very next batch. The
trainer keeps the latest cursor of every stream in its checkpoint (``stream_cursors``).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urljoin

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from webdataset.gopen import gopen
from webdataset.tariterators import group_by_keys, tar_file_iterator

from usad.audio import AudioError
from usad.config import SAMPLE_RATE
from usad.data.augment import AugmentConfig, augment_rows
from usad.data.shards import MANIFEST, audio_member, decode_audio, open_audio, shard_domains
from usad.errors import UsadError

log = logging.getLogger(__name__)
_BUCKET_SALT = 0x5EED  # keeps the mixer's generators apart from the windows'
COUNTERS = ("undecodable", "too_short", "bad_shards")


class DataError(UsadError, ValueError):
    """A corpus that cannot be streamed: no manifest, no usable clips, domains without a weight."""


@dataclass
class DataConfig:
    """The ``data`` section of a distillation recipe."""

    corpus: list[str] = field(default_factory=list)  # shard dirs, http(s) dir URLs, or pipe: templates with {}
    crop_seconds: float = 10.0
    min_seconds: float = 0.1  # drum hits and spoken digits are short; the student needs >= 25 ms
    pad_multiple_seconds: float = 0.5  # fewer distinct batch shapes for torch.compile
    domain_weights: dict[str, float] = field(
        default_factory=lambda: {"speech": 1.0, "sound": 2.0, "music": 2.0})  # USAD: sound and music x2
    bucket_batches: int = 8  # batches drawn together and sorted by length (length bucketing)
    shuffle_clips: int = 500  # shuffle window per domain and worker, in clips
    workers: int = 4  # DataLoader processes per rank (0: decode in the training process)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


# --- where shards are ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Shard:
    url: str  # local path, http(s) URL or pipe: command
    domains: tuple[str, ...]
    seconds: tuple[tuple[str, float], ...]  # (domain, seconds) from the manifest


def locate(corpus: str, relative: str) -> str:
    """A file of a corpus: ``DIR`` + path, ``https://host/dir/`` + path, or ``pipe:cmd ... {} ...`` with {} = path."""
    if corpus.startswith("pipe:"):
        if "{}" not in corpus:
            raise DataError(f"{corpus!r}: a pipe: corpus needs {{}} where the file's path goes")
        return corpus.replace("{}", relative)
    if "://" in corpus:
        return urljoin(corpus.rstrip("/") + "/", relative)
    return str(Path(corpus) / relative)


def read_corpus(corpus: list[str]) -> list[Shard]:
    """Every shard listed by the manifests of ``corpus`` (paths relative to each manifest's location)."""
    shards = []
    for location in corpus:
        try:
            with gopen(locate(location, MANIFEST)) as f:
                manifest = json.loads(f.read())
            entries = manifest["shards"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataError(f"{location}: no readable {MANIFEST} ({err})") from None
        for entry in entries:
            seconds = tuple(sorted((d, float(s)) for d, s in entry.get("seconds", {}).items()))
            shards.append(Shard(locate(location, entry["path"]), tuple(shard_domains(entry)), seconds))
    if not shards:
        raise DataError(f"no shards listed in {', '.join(corpus) or 'an empty corpus list'}")
    return shards


class Unit(NamedTuple):
    shard: int
    part: int
    parts: int


class Plan:
    """Which units each stream reads per domain and epoch, and the domain mixing probabilities."""

    def __init__(self, shards: list[Shard], domain_weights: dict[str, float], streams: int, seed: int):
        self.shards, self.streams, self.seed = shards, streams, seed
        self.domains = sorted({d for s in shards for d in s.domains})
        unknown = [d for d in self.domains if d not in domain_weights]
        if unknown:
            raise DataError(f"domains {unknown} in the corpus have no entry in data.domain_weights")
        seconds = {d: sum(dict(s.seconds).get(d, 0.0) for s in shards) for d in self.domains}
        self.active = [d for d in self.domains if domain_weights[d] > 0 and seconds[d] > 0]
        self.seconds = {d: seconds[d] for d in self.active}  # audio of each streamed domain, by the manifests
        if not self.active:
            raise DataError("no domain of the corpus has both audio and a positive weight")
        mass = np.array([domain_weights[d] * seconds[d] for d in self.active])
        self.probs = mass / mass.sum()
        self.units: dict[str, list[Unit]] = {}
        for d in self.active:
            members = [i for i, s in enumerate(shards) if d in s.domains]
            parts = math.ceil(streams / len(members))
            self.units[d] = [Unit(i, p, parts) for i in members for p in range(parts)]

    @property
    def layout(self) -> dict:
        """What a cursor is only valid for."""
        return {"streams": self.streams, "shards": len(self.shards), "domains": self.active}

    def epoch_units(self, domain: str, epoch: int, stream: int) -> list[Unit]:
        units = self.units[domain]
        order = np.random.default_rng([self.seed, self.domains.index(domain), epoch]).permutation(len(units))
        return [units[k] for k in order[stream::self.streams]]


# --- one domain of one stream -------------------------------------------------------------------

class Crop(NamedTuple):
    data: bytes  # the clip's compressed (or PCM) bytes, shared by its crops
    name: str  # shard:key, for messages
    start: int
    length: int
    domain: str


class DomainStream:
    """Shuffled crops of one domain for one stream, restartable from ``state()``."""

    def __init__(self, plan: Plan, domain: str, stream: int, crop: int, min_samples: int, window_clips: int,
                 state: dict | None = None, start_epoch: int = 0):
        self.plan, self.domain, self.stream = plan, domain, stream
        self.crop, self.min_samples, self.window_clips = crop, min_samples, window_clips
        state = state or {"epoch": start_epoch, "unit": 0, "offset": 0, "window": 0, "taken": 0,
                          "counts": dict.fromkeys(COUNTERS, 0)}
        self.start = (state["epoch"], state["unit"], state["offset"])
        self.window_no, self.counts = state["window"], dict(state["counts"])
        self.start_counts = dict(self.counts)
        self.source = self._clips(*self.start)
        self._fill()
        self.taken = state["taken"]

    def state(self) -> dict:
        epoch, unit, offset = self.start
        return {"epoch": epoch, "unit": unit, "offset": offset, "window": self.window_no, "taken": self.taken,
                "counts": dict(self.start_counts)}

    def next_crop(self) -> Crop:
        while self.taken >= len(self.window):
            self.start, self.start_counts = self.position, dict(self.counts)
            self.window_no += 1
            self._fill()
        self.taken += 1
        return self.window[self.taken - 1]

    def _fill(self) -> None:
        rng = np.random.default_rng([self.plan.seed, self.stream, self.plan.domains.index(self.domain),
                                     self.window_no])
        crops, self.position = [], self.start
        for name, data, frames, position in itertools.islice(self.source, self.window_clips):
            n = max(1, frames // self.crop)
            segment = frames // n
            length = min(self.crop, segment)
            offsets = (rng.random(n) * (segment - length + 1)).astype(np.int64)
            crops.extend(Crop(data, name, k * segment + int(o), length, self.domain) for k, o in enumerate(offsets))
            self.position = position
        self.window, self.taken = [crops[k] for k in rng.permutation(len(crops))], 0

    def _clips(self, epoch: int, unit: int, offset: int) -> Iterator[tuple[str, bytes, int, tuple[int, int, int]]]:
        """(name, bytes, frames, position after it) of every usable clip from a position on, epoch after epoch."""
        while True:
            found, whole_epoch = False, unit == 0 and offset == 0
            units = self.plan.epoch_units(self.domain, epoch, self.stream)
            for u in range(unit, len(units)):
                for n, sample in enumerate(self._unit_samples(units[u])):
                    if n < offset:
                        continue
                    clip = self._usable(sample)
                    if clip is not None:
                        found = True
                        yield (*clip, (epoch, u, n + 1))
                offset = 0
            if whole_epoch and not found:
                raise DataError(f"stream {self.stream}: no usable {self.domain} clip in a whole epoch "
                                f"({self.counts})")
            epoch, unit = epoch + 1, 0

    def _unit_samples(self, unit: Unit) -> Iterator[dict]:
        """This unit's samples of the domain in stored order; a truncated or unreadable shard ends early."""
        shard = self.plan.shards[unit.shard]
        mixed, index = len(shard.domains) > 1, 0
        try:
            with gopen(shard.url) as stream:
                for sample in group_by_keys({**f, "__url__": shard.url} for f in tar_file_iterator(stream)):
                    if mixed and _meta(sample).get("domain") != self.domain:
                        continue
                    if index % unit.parts == unit.part:
                        yield sample
                    index += 1
        except (tarfile.TarError, OSError, EOFError, ValueError) as err:
            self.counts["bad_shards"] += 1
            log.warning("%s: shard skipped from clip %d on (%s)", shard.url, index, str(err).split(" @ ")[0])

    def _usable(self, sample: dict) -> tuple[str, bytes, int] | None:
        name = f"{sample['__url__']}:{sample['__key__']}"
        member = audio_member(sample)
        try:
            if member is None:
                raise AudioError(f"{name}: audio member missing")
            with open_audio(member[1], name) as audio:
                frames = audio.frames
        except AudioError as err:
            self.counts["undecodable"] += 1
            log.warning("%s", err)
            return None
        if frames < self.min_samples:
            self.counts["too_short"] += 1
            return None
        return name, member[1], frames


def _meta(sample: dict) -> dict:
    try:
        return json.loads(sample.get("json", b"{}"))
    except ValueError:
        return {}


# --- batches --------------------------------------------------------------------------------------

PCM_SCALE = 32768.0


@dataclass
class Batch:
    """Crops as 16-bit PCM: half the bytes of float32 between worker processes, host and GPU."""

    pcm: Tensor  # (B, S) int16, zero-padded
    lengths: Tensor  # (B,) int64
    cursor: dict  # the stream's cursor after this batch (JSON-able)
    names: list[str]  # shard:key of each row

    def pin_memory(self) -> Batch:
        return dataclasses.replace(self, pcm=self.pcm.pin_memory(), lengths=self.lengths.pin_memory())

    def to(self, device: torch.device | str) -> tuple[Tensor, Tensor]:
        """(B, S) float32 waveforms in [-1, 1) and (B,) lengths on ``device``."""
        waveforms = self.pcm.to(device, non_blocking=True).float().div_(PCM_SCALE)
        return waveforms, self.lengths.to(device, non_blocking=True)


class BatchStream:
    """One stream's batches (``batch_size`` crops each), from a cursor on."""

    def __init__(self, plan: Plan, stream: int, config: DataConfig, batch_size: int, cursor: dict | None = None,
                 start_epoch: int = 0):
        self.plan, self.stream, self.config, self.batch_size = plan, stream, config, batch_size
        cursor = cursor or {}
        crop, min_samples = int(config.crop_seconds * SAMPLE_RATE), max(1, int(config.min_seconds * SAMPLE_RATE))
        self.domains = {d: DomainStream(plan, d, stream, crop, min_samples, config.shuffle_clips,
                                        cursor.get("domains", {}).get(d), start_epoch) for d in plan.active}
        self.bucket, self.emitted = cursor.get("bucket", 0), cursor.get("emitted", 0)
        self.decode_failures = cursor.get("decode_failures", 0)
        self.pad = max(1, int(config.pad_multiple_seconds * SAMPLE_RATE))

    def counts(self) -> dict[str, int]:
        totals = {k: sum(d.counts[k] for d in self.domains.values()) for k in COUNTERS}
        totals["undecodable"] += self.decode_failures
        return totals

    def __iter__(self) -> Iterator[Batch]:
        n_batches, seed = self.config.bucket_batches, self.plan.seed
        while True:
            snapshot = {d: s.state() for d, s in self.domains.items()}
            rng = np.random.default_rng([seed, self.stream, _BUCKET_SALT, self.bucket])
            picks = rng.choice(len(self.plan.active), size=n_batches * self.batch_size, p=self.plan.probs)
            crops = [self.domains[self.plan.active[k]].next_crop() for k in picks]
            order = np.argsort([-c.length for c in crops], kind="stable").reshape(n_batches, self.batch_size)
            order = order[rng.permutation(n_batches)]
            for j in range(self.emitted, n_batches):
                rows, kept = self._decode([crops[k] for k in order[j]],
                                          np.random.default_rng([seed, self.stream, _BUCKET_SALT, self.bucket, j]))
                self.emitted = j + 1
                cursor = {"stream": self.stream, "layout": self.plan.layout, "bucket": self.bucket,
                          "emitted": self.emitted, "domains": snapshot, "decode_failures": self.decode_failures,
                          "counts": self.counts()}
                if rows:
                    yield self._pad(rows, kept, cursor)
            self.bucket, self.emitted = self.bucket + 1, 0

    def _decode(self, crops: list[Crop], rng: np.random.Generator) -> tuple[list[np.ndarray], list[Crop]]:
        rows, kept = [], []
        for crop in crops:
            try:
                rows.append(decode_audio(crop.data, crop.name, crop.start, crop.length))
                kept.append(crop)
            except AudioError as err:
                self.decode_failures += 1
                log.warning("%s", err)
        if rows and self.config.augment.enabled:
            rows = augment_rows(rows, [c.domain for c in kept], self.config.augment, rng)
        return rows, kept

    def _pad(self, rows: list[np.ndarray], crops: list[Crop], cursor: dict) -> Batch:
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        pcm = np.zeros((len(rows), -(-int(lengths.max()) // self.pad) * self.pad), dtype=np.int16)
        for i, row in enumerate(rows):
            pcm[i, : len(row)] = np.clip(np.round(row * PCM_SCALE), -PCM_SCALE, PCM_SCALE - 1)
        return Batch(torch.from_numpy(pcm), torch.from_numpy(lengths), cursor, [c.name for c in crops])


class ShardStream(IterableDataset):
    """This rank's batches for a DataLoader: worker i runs stream ``rank * W + (i + first_slot) mod W``
    (W = max(1, workers)). The DataLoader takes batches from its workers in turn, so a run resumed at
    step S passes ``first_slot = S mod W`` and every stream continues exactly where it stopped."""

    def __init__(self, config: DataConfig, batch_size: int, seed: int, rank: int = 0, world: int = 1,
                 cursors: dict[int, dict] | None = None, first_slot: int = 0):
        super().__init__()
        self.config, self.batch_size, self.rank = config, batch_size, rank
        self.slots, self.first_slot = max(1, config.workers), first_slot
        self.plan = Plan(read_corpus(config.corpus), config.domain_weights, world * self.slots, seed)
        self.cursors, self.start_epoch, self.note = dict(cursors or {}), 0, ""
        if self.cursors and any(c.get("layout") != self.plan.layout for c in self.cursors.values()):
            # Other ranks x workers, corpus or domains: the cursors do not apply. Start a fresh epoch.
            self.start_epoch = 1 + max(d["epoch"] for c in self.cursors.values() for d in c["domains"].values())
            old = next(iter(self.cursors.values()))["layout"]
            self.note = (f"data layout changed ({old} -> {self.plan.layout}): data order restarts at epoch "
                         f"{self.start_epoch}, not an exact resume")
            self.cursors = {}

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        stream = self.rank * self.slots + ((info.id if info else 0) + self.first_slot) % self.slots
        return iter(BatchStream(self.plan, stream, self.config, self.batch_size, self.cursors.get(stream),
                                self.start_epoch))


def _own_process_group(_worker: int) -> None:
    # A SIGTERM to the trainer's process group (a shell, torchrun, a scheduler) then reaches the trainer
    # alone, which checkpoints and ends its workers itself; the DataLoader still ends them by pid.
    os.setpgrp()


def make_loader(dataset: ShardStream, pin_memory: bool = False) -> DataLoader:
    workers = dataset.config.workers
    return DataLoader(dataset, batch_size=None, num_workers=workers, pin_memory=pin_memory,
                      prefetch_factor=4 if workers else None, worker_init_fn=_own_process_group if workers else None)
