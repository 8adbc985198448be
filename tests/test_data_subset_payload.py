"""The leak guard inside build_corpus, the scaling subset (whole shards, relative paths) and the
transfer payload (parts of whole files, manifests in part 1), through the library and the CLI."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from usad.data.corpus import build_corpus
from usad.data.payload import make_payload
from usad.data.shards import read_manifest, verify_shards
from usad.data.splits import LeakError
from usad.data.subset import build_subset

USAD = str(Path(sys.executable).with_name("usad"))
SHARED = Path("../shared")
SOURCES = ("tuxpaint-voices", "fillets-voices", "ufoai-sfx", "tuxpaint-sfx", "warzone2100-music")
HELD_OUT = "tuxpaint-voices:tuxpaint/stamps/animals/cat_desc_fr.ogg"


@pytest.fixture
def leaky_tasks(tmp_path):
    """Task manifests whose test side holds one of the fake tree's recordings."""
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    rows = [{"split": "test", "sources": [HELD_OUT]}, {"split": "train", "sources": ["fillets-voices:x"]}]
    (tasks / "T9-fake.json").write_text(json.dumps({"task": "T9-fake", "rows": rows}))
    return tasks


@pytest.fixture
def corpus(tree, tmp_path):
    out = tmp_path / "corpus-20h"
    build_corpus(out, hours_per_domain=0.01, subset=SOURCES, paths=tree, shard_mb=0.004, workers=1)
    return out


def test_build_corpus_refuses_a_leaking_corpus_and_writes_nothing(tree, tmp_path, leaky_tasks):
    with pytest.raises(LeakError, match="T9-fake"):
        build_corpus(tmp_path / "c", hours_per_domain=0.01, subset=("tuxpaint-voices",), paths=tree, workers=1,
                     tasks_dir=leaky_tasks)
    assert not (tmp_path / "c" / "manifest.json").exists() and not list(tmp_path.glob("c/*.tar"))


@pytest.mark.skipif(not (SHARED / "data" / "fsdd").is_dir(), reason="needs ../shared")
def test_cli_refuses_a_leaking_corpus_in_one_line(tmp_path):
    recordings = tmp_path / "shared" / "data" / "fsdd" / "recordings"
    recordings.mkdir(parents=True)
    shutil.copy(SHARED / "data" / "fsdd" / "recordings" / "0_jackson_10.flac", recordings)  # training side
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "T9-fake.json").write_text(json.dumps({"task": "T9-fake", "rows": [
        {"split": "val", "sources": ["fsdd:0_jackson_10"]}]}))
    run = subprocess.run([USAD, "data", "corpus", "--out", str(tmp_path / "c"), "--hours-per-domain", "0.01",
                          "--subset", "fsdd", "--workers", "1", "--shared", str(tmp_path / "shared"),
                          "--tasks-dir", str(tasks)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr
    assert "corpus contains held-out task audio (T9-fake" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "c" / "manifest.json").exists()


def test_subset_takes_whole_shards_per_domain_with_relative_paths(corpus, tmp_path):
    parent = read_manifest(corpus)
    subset = build_subset(corpus, tmp_path / "corpus-2h", hours=0.006)
    assert {s["domain"] for s in subset["shards"]} == {"speech", "sound", "music"}
    assert all(s["path"].startswith("../corpus-20h/") for s in subset["shards"])
    assert len(subset["shards"]) < len(parent["shards"])
    by_path = {s["path"]: s for s in parent["shards"]}
    for shard in subset["shards"]:
        assert shard | {"path": shard["path"][len("../corpus-20h/"):]} == by_path[shard["path"][len("../corpus-20h/"):]]
    assert verify_shards(tmp_path / "corpus-2h") == []
    assert set(subset["source_tokens"]) <= set(parent["source_tokens"])
    seconds = sum(sum(s["seconds"].values()) for s in subset["shards"])
    assert subset["hours"] == pytest.approx(seconds / 3600, abs=1e-3)


def test_repacked_subset_copies_the_leading_clips_of_each_domain(corpus, tmp_path):
    from usad.data.shards import iter_shard

    parent = read_manifest(corpus)
    hours = 0.002  # less than one shard per domain
    subset = build_subset(corpus, tmp_path / "small", hours=hours, repack=True)
    assert {s["domain"] for s in subset["shards"]} == {"speech", "sound", "music"}
    assert verify_shards(tmp_path / "small") == [] and not any(s["path"].startswith("..") for s in subset["shards"])
    for domain in ("speech", "sound", "music"):
        clips = [c for s in subset["shards"] if s["domain"] == domain
                 for c in iter_shard(tmp_path / "small" / s["path"])]
        ordered = [c for s in parent["shards"] if s["domain"] == domain for c in iter_shard(corpus / s["path"])]
        leading = {c.key: c for c in ordered[: len(clips)]}
        assert {c.key for c in clips} == set(leading)  # the parent's leading clips
        seconds = [c.meta["seconds"] for c in ordered[: len(clips)]]
        assert sum(seconds) >= hours * 3600 / 3 > sum(seconds[:-1])  # just enough of them
        assert all((c.audio == leading[c.key].audio).all() for c in clips)  # copied, not re-encoded


def test_subset_cli_and_its_bad_input(corpus, tmp_path):
    ok = subprocess.run([USAD, "data", "subset", str(corpus), "--out", str(tmp_path / "s"), "--hours", "0.006"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "shards" in ok.stderr
    for args in ([str(tmp_path / "nowhere"), "--out", str(tmp_path / "t")],
                 [str(corpus), "--out", str(tmp_path / "t"), "--hours", "0"]):
        bad = subprocess.run([USAD, "data", "subset", *args], capture_output=True, text=True, timeout=120)
        assert bad.returncode == 1 and "Traceback" not in bad.stderr and "error" in bad.stderr


def test_payload_parts_are_whole_files_under_the_limit(corpus, tmp_path):
    build_subset(corpus, tmp_path / "corpus-2h", hours=0.006)
    largest = max(s["bytes"] for s in read_manifest(corpus)["shards"])
    part_mib = 3 * largest / 2**20
    listing = make_payload([tmp_path / "corpus-2h", corpus], tmp_path / "payload", part_mib=part_mib)
    parts = sorted((tmp_path / "payload").glob("part*"))
    assert len(parts) == len(listing["parts"]) >= 2
    assert all((parts[0] / name / "manifest.json").is_file() for name in ("corpus-20h", "corpus-2h"))
    for part in parts:
        assert sum(f.stat().st_size for f in part.rglob("*") if f.is_file()) <= part_mib * 2**20
    merged = tmp_path / "merged"
    for part in parts:  # what the receiving side does: cp -rl partN/. data/
        subprocess.run(["cp", "-rl", f"{part}/.", str(merged)], check=True)
    assert verify_shards(merged / "corpus-20h") == [] and verify_shards(merged / "corpus-2h") == []
    shard_files = [f for p in parts for f in p.rglob("*.tar")]
    assert len(shard_files) == len(read_manifest(corpus)["shards"])  # each shard once, the subset's included
    bad = subprocess.run([USAD, "data", "payload", str(corpus), "--out", str(tmp_path / "payload")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "already holds payload parts" in bad.stderr and "Traceback" not in bad.stderr
