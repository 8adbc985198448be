"""The corpus build: deterministic shards and manifest, domain/source tags on every clip, only
training-side recordings, and bad source files reported, not fatal."""

import json
import shutil
from pathlib import Path

import pytest

from usad.data.corpus import build_corpus
from usad.data.shards import iter_shard, read_manifest, verify_shards
from usad.data.splits import LeakError, check_disjoint
from usad.data.tasks import held_out_tokens, load_manifest

SHARED = Path("../shared")
pytestmark = pytest.mark.skipif(not (SHARED / "data" / "fsdd").is_dir(), reason="needs ../shared")
TRAIN_SIDE = ("0_jackson_10", "1_lucas_11", "2_nicolas_12", "3_jackson_13", "4_lucas_14", "5_nicolas_15")
HELD_OUT = ("0_george_10", "1_theo_11", "9_jackson_12")  # T1 test speaker, T1 val speaker, T2 test digit


@pytest.fixture
def fake_shared(tmp_path):
    """A few real FSDD files of both sides, plus one corrupt file on the training side."""
    recordings = tmp_path / "shared" / "data" / "fsdd" / "recordings"
    recordings.mkdir(parents=True)
    for name in TRAIN_SIDE + HELD_OUT:
        shutil.copy(SHARED / "data" / "fsdd" / "recordings" / f"{name}.flac", recordings)
    (recordings / "4_jackson_16.flac").write_bytes(b"\x00" * 100)
    return tmp_path / "shared"


def _build(out, shared):
    from usad.data.sources import SourcePaths

    return build_corpus(out, hours_per_domain=0.01, subset=("fsdd",), paths=SourcePaths(shared=shared),
                        shard_mb=0.01, workers=1)


def test_corpus_is_deterministic_tagged_and_training_side_only(tmp_path, fake_shared):
    first = _build(tmp_path / "a", fake_shared)
    second = _build(tmp_path / "b", fake_shared)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert len(first["shards"]) >= 2 and verify_shards(tmp_path / "a") == []
    assert first["clips"] == len(TRAIN_SIDE)
    assert any("4_jackson_16" in p for p in first["problems"])  # reported, and the build went on
    clips = [c for shard in first["shards"] for c in iter_shard(tmp_path / "a" / shard["path"])]
    assert sorted(c.meta["sources"][0] for c in clips) == sorted(f"fsdd:{n}" for n in TRAIN_SIDE)
    assert all(c.domain == "speech" and c.source == "fsdd" and c.meta["real"] for c in clips)
    assert abs(sum(c.audio.size for c in clips) / 16000 / 3600 - first["hours"]) < 1e-3
    check_disjoint(set(read_manifest(tmp_path / "a")["source_tokens"]), held_out_tokens())


def test_leak_check_refuses_corpus_with_a_test_clip(tmp_path, fake_shared):
    manifest = _build(tmp_path / "a", fake_shared)
    test_clip = next(r["id"] for r in load_manifest("T1-digit")["rows"] if r["split"] == "test")
    tokens = set(manifest["source_tokens"]) | {test_clip}
    with pytest.raises(LeakError, match="T1-digit"):
        check_disjoint(tokens, held_out_tokens())


def test_unknown_source_name_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown corpus sources"):
        build_corpus(tmp_path, subset=("nope",))


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (make system-deps)")
def test_synthetic_sources_are_deterministic(tmp_path, tree):
    from dataclasses import replace

    paths = replace(tree, drumkits=tmp_path / "none", sonic_pi=tmp_path / "none")  # scenes of the tree's effects

    def build(out):
        return build_corpus(out, hours_per_domain=0.002, subset=("tts-espeak-ng", "sfx-scenes"), paths=paths,
                            workers=1)

    first, second = build(tmp_path / "a"), build(tmp_path / "b")
    assert first["shards"] == second["shards"]
    assert set(first["domains"]) == {"speech", "sound"}
    assert first["real_hours"] == 0
    assert any(t.startswith("text:") for t in first["source_tokens"])
    check_disjoint(set(first["source_tokens"]), held_out_tokens())


def test_missing_source_folders_are_reported_not_fatal(tmp_path):
    from usad.data.sources import SourcePaths

    nowhere = tmp_path / "nowhere"
    paths = SourcePaths(shared=nowhere, drumkits=nowhere, sonic_pi=nowhere, soundfonts=(nowhere,), games=nowhere,
                        share=nowhere)
    subset = ("fsdd", "sfx-scenes", "fluidsynth-scores")
    manifest = build_corpus(tmp_path / "out", hours_per_domain=0.001, subset=subset, paths=paths, workers=1)
    assert manifest["clips"] == 0 and manifest["shards"] == []
    assert any(p.startswith("fsdd: no usable audio") for p in manifest["problems"])
    assert any(p.startswith("sfx-scenes: skipped") for p in manifest["problems"])
    assert any("soundfont" in p for p in manifest["problems"] if p.startswith("fluidsynth-scores"))
