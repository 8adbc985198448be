"""usad.data.stream on real recordings (GCompris speech, joined and re-labelled into domains): bounded
memory on a corpus far larger than the bound, exact resume from any cursor (in process and through
DataLoader workers), disjoint shards over 2 ranks x 2 workers, skipped-and-counted bad data, domain
weights, length bucketing, pipe: and file:// corpora."""

from __future__ import annotations

import dataclasses
import itertools
import json
import tarfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from webdataset import TarWriter

from usad.audio import load_audio
from usad.config import SAMPLE_RATE
from usad.data.shards import MANIFEST, encode_opus
from usad.data.stream import DataConfig, DataError, Plan, ShardStream, make_loader, read_corpus
from usad.data.transcode import encode

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
pytestmark = pytest.mark.skipif(not (SHARED / "data/gcompris-voices").is_dir(), reason="needs ../shared audio")
DOMAINS = ("speech", "sound", "music")


@pytest.fixture(scope="module")
def recordings() -> list[np.ndarray]:
    """60 real GCompris recordings, 0.5-3 s each."""
    files = sorted((SHARED / "data/gcompris-voices").rglob("*.ogg"))[::17]
    clips = [load_audio(f) for f in files]
    return [c for c in clips if 0.5 * SAMPLE_RATE <= len(c) <= 3 * SAMPLE_RATE][:60]


def write_corpus(root: Path, shards: list[list[tuple[str, bytes, str, float]]], ext: str = "opus") -> Path:
    """Shards of (key, audio bytes, domain, seconds) in the project's layout, one domain per shard."""
    root.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, clips in enumerate(shards):
        name = f"shard-{i:05d}.tar"
        with open(root / name, "wb") as f, TarWriter(f, encoder=False, mtime=0) as writer:
            for key, data, domain, seconds in clips:
                meta = json.dumps({"domain": domain, "source": "gcompris", "seconds": seconds}).encode()
                writer.write({"__key__": key, ext: data, "json": meta})
        domain = clips[0][2]
        entries.append({"path": name, "domain": domain, "clips": len(clips),
                        "seconds": {domain: round(sum(c[3] for c in clips), 3)}, "sha256": ""})
    (root / MANIFEST).write_text(json.dumps({"format": "usad-shards/1", "shards": entries}))
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, recordings) -> Path:
    """12 Opus shards, 4 per domain, 10 real clips each."""
    encoded = [encode_opus(c) for c in recordings]
    index = lambda d, s, c: (d * 40 + s * 10 + c) % len(encoded)  # noqa: E731
    shards = [[(f"d{d}s{s}c{c}", encoded[index(d, s, c)], DOMAINS[d], len(recordings[index(d, s, c)]) / SAMPLE_RATE)
               for c in range(10)] for d in range(3) for s in range(4)]
    return write_corpus(tmp_path_factory.mktemp("stream") / "corpus", shards)


def config_for(corpus: Path | str, **changes) -> DataConfig:
    base = DataConfig(corpus=[str(corpus)], crop_seconds=1.0, min_seconds=0.5, pad_multiple_seconds=0.0,
                      bucket_batches=2, shuffle_clips=4, workers=0)
    return dataclasses.replace(base, **changes)


def take(stream, n: int) -> list:
    return list(itertools.islice(iter(stream), n))


def same(a, b) -> bool:
    return torch.equal(a.pcm, b.pcm) and torch.equal(a.lengths, b.lengths) and a.names == b.names


def test_memory_stays_bounded_on_a_corpus_larger_than_the_bound(tmp_path, recordings):
    """43 min of audio (164 MB as float32, 82 MB as PCM on disk) streams within 40 MB of Python memory."""
    ten_s = [np.resize(np.concatenate(recordings[i::6]), 10 * SAMPLE_RATE).astype(np.float32) for i in range(6)]
    wav = [encode(c, "pcm16") for c in ten_s]
    shards = [[(f"s{s}c{c}", wav[(s + c) % 6], DOMAINS[s % 3], 10.0) for c in range(32)] for s in range(8)]
    corpus = write_corpus(tmp_path / "big", shards, ext="wav")
    corpus_seconds, decoded_mb = 8 * 32 * 10, 8 * 32 * 10 * SAMPLE_RATE * 4 / 1e6
    stream = iter(ShardStream(config_for(corpus, crop_seconds=2.0, shuffle_clips=16, bucket_batches=4), 16, 0))
    tracemalloc.start()
    try:
        peaks, audio = [], 0.0
        for _ in range(5):  # 5 x 20 batches x 16 crops x 2 s: 1.25 times the corpus
            for _batch in range(20):
                audio += float(next(stream).lengths.sum()) / SAMPLE_RATE
            peaks.append(tracemalloc.get_traced_memory()[1] / 1e6)
    finally:
        tracemalloc.stop()
    assert audio > corpus_seconds  # more than the whole corpus went through
    assert max(peaks) < 40 < decoded_mb / 4, (peaks, decoded_mb)
    assert peaks[-1] < 1.25 * peaks[1], peaks  # no growth with the audio streamed


@pytest.mark.parametrize("cut", [0, 1, 5, 23, 50])
def test_resume_from_any_cursor_reproduces_the_batches(corpus, cut):
    config = config_for(corpus, crop_seconds=3.0)
    straight = take(ShardStream(config, 3, seed=7), 60)  # several windows, buckets and an epoch boundary
    resumed = take(ShardStream(config, 3, seed=7, cursors={0: straight[cut].cursor}), 59 - cut)
    assert all(same(a, b) for a, b in zip(straight[cut + 1:], resumed))
    assert max(d["epoch"] for d in straight[-1].cursor["domains"].values()) >= 1
    other_seed = take(ShardStream(config, 3, seed=8), 3)
    assert not same(other_seed[2], straight[2])


def test_dataloader_workers_resume_exactly(corpus):
    """Two workers take turns; after batch k each stream resumes from its own last cursor."""
    config = config_for(corpus, workers=2)
    straight = take(make_loader(ShardStream(config, 3, seed=1)), 14)
    assert {b.cursor["stream"] for b in straight} == {0, 1}
    k = 6
    cursors = {b.cursor["stream"]: b.cursor for b in straight[: k + 1]}
    resumed = take(make_loader(ShardStream(config, 3, seed=1, cursors=cursors, first_slot=(k + 1) % 2)), 14 - k - 1)
    assert all(same(a, b) for a, b in zip(straight[k + 1:], resumed))


def test_two_ranks_two_workers_read_disjoint_shards(corpus):
    seen = {}
    for rank in range(2):
        # 3 batches of 2 crops (one per clip) a stream: none reaches the end of its first epoch's shards
        stream = ShardStream(config_for(corpus, crop_seconds=10.0, workers=2), 2, seed=3, rank=rank, world=2)
        for batch in take(make_loader(stream), 6):
            shards = {name.rsplit(":", 1)[0] for name in batch.names}
            seen.setdefault(batch.cursor["stream"], set()).update(shards)
    assert sorted(seen) == [0, 1, 2, 3]
    for a, b in itertools.combinations(seen.values(), 2):
        assert not a & b
    plan = Plan(read_corpus([str(corpus)]), DataConfig().domain_weights, streams=4, seed=3)
    for domain in DOMAINS:  # every stream gets one of each domain's 4 shards per epoch, for every epoch
        for epoch in range(3):
            units = [u for s in range(4) for u in plan.epoch_units(domain, epoch, s)]
            assert sorted(u.shard for u in units) == sorted({u.shard for u in plan.units[domain]})


def test_fewer_shards_than_streams_split_into_disjoint_parts(tmp_path, recordings):
    opus = [encode_opus(c) for c in recordings[:24]]
    corpus = write_corpus(tmp_path / "one", [[(f"c{i}", opus[i], "speech", 1.0) for i in range(24)]])
    config = config_for(corpus, domain_weights={"speech": 1.0}, crop_seconds=3.0, shuffle_clips=8)  # one part
    keys = [{n for b in take(ShardStream(config, 2, seed=0, rank=r, world=3), 2) for n in b.names} for r in range(3)]
    assert all(len(k) == 4 for k in keys) and not (keys[0] & keys[1] or keys[1] & keys[2] or keys[0] & keys[2])


def test_truncated_shard_and_undecodable_clip_are_skipped_and_counted(tmp_path, recordings):
    opus = [encode_opus(c) for c in recordings[:20]]
    shards = [[(f"s{s}c{c}", opus[s * 5 + c], "speech", 1.0) for c in range(5)] for s in range(4)]
    shards[1][2] = ("broken", b"OggS but not audio", "speech", 1.0)
    corpus = write_corpus(tmp_path / "bad", shards)
    whole = (corpus / "shard-00002.tar").read_bytes()
    (corpus / "shard-00002.tar").write_bytes(whole[: len(whole) // 2])  # cut in the middle of a clip
    (corpus / "shard-00003.tar").unlink()  # listed, but gone
    config = config_for(corpus, domain_weights={"speech": 1.0}, shuffle_clips=6)
    batches = take(ShardStream(config, 2, seed=0), 30)  # 60 crops: every usable clip, over several epochs
    counts = batches[-1].cursor["counts"]
    assert counts["undecodable"] >= 1 and counts["bad_shards"] >= 2, counts
    names = {n for b in batches for n in b.names}
    assert not any("broken" in n for n in names)
    assert any("shard-00002.tar:s2c0" in n for n in names)  # clips before the cut are used
    with pytest.raises(DataError, match="no readable manifest.json"):
        ShardStream(config_for(tmp_path / "nowhere"), 2, seed=0)
    with pytest.raises(DataError, match=r"domains \['speech'\].*no entry in data.domain_weights"):
        ShardStream(config_for(corpus, domain_weights={"music": 1.0}), 2, seed=0)


def test_domain_weights_and_length_bucketing(corpus):
    config = config_for(corpus, crop_seconds=10.0, bucket_batches=8, shuffle_clips=20)
    batches = take(ShardStream(config, 8, seed=0), 96)
    shards = read_corpus([str(corpus)])
    seconds = {d: sum(dict(s.seconds).get(d, 0.0) for s in shards) for d in DOMAINS}
    mass = {d: config.domain_weights[d] * seconds[d] for d in DOMAINS}
    drawn = [n.split(":")[-1][:2] for b in batches for n in b.names]  # key prefix d0/d1/d2 = domain
    for i, domain in enumerate(DOMAINS):
        share = np.mean([d == f"d{i}" for d in drawn])
        assert share == pytest.approx(mass[domain] / sum(mass.values()), abs=0.05)
    lengths = [b.lengths.numpy() for b in batches]
    bucketed = np.mean([1 - x.mean() / x.max() for x in lengths])
    shuffled = np.random.default_rng(0).permutation(np.concatenate(lengths)).reshape(-1, 8)
    assert bucketed < 0.5 * np.mean([1 - x.mean() / x.max() for x in shuffled])


def test_pipe_and_file_url_corpora_stream_the_same_batches(corpus):
    local = take(ShardStream(config_for(corpus), 3, seed=2), 6)
    for location in (f"pipe:cat {corpus}/{{}}", f"file://{corpus}/"):
        remote = take(ShardStream(config_for(location), 3, seed=2), 6)
        assert all(torch.equal(a.pcm, b.pcm) for a, b in zip(local, remote)), location
    with pytest.raises(DataError, match="needs \\{\\}"):
        ShardStream(config_for(f"pipe:cat {corpus}/manifest.json"), 3, seed=2)


def test_batches_are_real_audio_as_pcm16(corpus, recordings):
    batch = take(ShardStream(config_for(corpus, crop_seconds=3.0), 4, seed=0), 1)[0]
    waveforms, lengths = batch.to("cpu")
    assert waveforms.dtype == torch.float32 and waveforms.abs().max() <= 1.0
    for row, n in zip(waveforms, lengths):
        assert row[:n].std() > 1e-3 and not row[n:].any()
    with tarfile.open(corpus / "shard-00000.tar") as tar:
        assert sorted({m.name.rsplit(".", 1)[1] for m in tar.getmembers()}) == ["json", "opus"]


def test_augmentation_mixes_across_domains_at_the_drawn_snr_and_resumes_exactly(corpus, recordings):
    from usad.data.augment import AugmentConfig, augment_rows

    speech, music = recordings[0][:8000], recordings[1][:8000]
    config = AugmentConfig(mix_prob=1.0, mix_snr_db=[10.0, 10.0])
    mixed = augment_rows([speech, music], ["speech", "music"], config, np.random.default_rng(0))
    added = mixed[0] - speech
    snr = 10 * np.log10(np.mean(speech.astype(np.float64) ** 2) / np.mean(added.astype(np.float64) ** 2))
    assert snr == pytest.approx(10.0, abs=0.1) and np.corrcoef(added, music)[0, 1] > 0.99
    same_domain = augment_rows([speech, music], ["speech", "speech"], config, np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(same_domain, [speech, music]))  # no partner of another domain
    slow = augment_rows([speech], ["speech"], AugmentConfig(speed_prob=1.0, speed=[0.5, 0.5]), np.random.default_rng(0))
    assert len(slow[0]) == len(speech) and not np.allclose(slow[0], speech)
    data = config_for(corpus, augment=AugmentConfig(mix_prob=0.5, gain_prob=0.5, speed_prob=0.5))
    plain, augmented = take(ShardStream(config_for(corpus), 3, seed=4), 8), take(ShardStream(data, 3, seed=4), 8)
    assert [b.names for b in plain] == [b.names for b in augmented]  # same crops, changed audio
    assert any(not torch.equal(a.pcm, b.pcm) for a, b in zip(plain, augmented))
    resumed = take(ShardStream(data, 3, seed=4, cursors={0: augmented[2].cursor}), 5)
    assert all(same(a, b) for a, b in zip(augmented[3:], resumed))
