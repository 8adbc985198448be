"""usad data transcode: real Opus shards to FLAC and 16-bit PCM keep clips, metadata and (within one 16-bit
step) the audio; the manifest records both hashes; the stream reads every format alike; bad input through
the CLI is one line and a non-zero exit; a rerun keeps the finished shards."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from usad.audio import load_audio
from usad.config import SAMPLE_RATE
from usad.data.shards import ShardWriter, encode_opus, iter_shard, read_manifest, sha256_file
from usad.data.stream import DataConfig, ShardStream
from usad.data.transcode import transcode_corpus

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
pytestmark = pytest.mark.skipif(not (SHARED / "data/gcompris-voices").is_dir(), reason="needs ../shared audio")


@pytest.fixture(scope="module")
def opus_corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("transcode") / "opus"
    writer = ShardWriter(out, max_bytes=15_000)
    for i, path in enumerate(sorted((SHARED / "data/gcompris-voices").rglob("*.ogg"))[:18:2]):
        audio = load_audio(path)
        writer.write(f"c{i:02d}", encode_opus(audio), {"domain": "speech", "source": "gcompris",
                                                       "seconds": len(audio) / SAMPLE_RATE})
    writer.close()
    return out


def usad(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from usad.cli import app; app(prog_name='usad')", *args],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})


@pytest.mark.parametrize("fmt,ext", [("flac", "flac"), ("pcm16", "wav")])
def test_transcode_keeps_clips_metadata_and_audio(opus_corpus, tmp_path, fmt, ext):
    manifest = transcode_corpus(opus_corpus, fmt, tmp_path / fmt, workers=2)
    source = read_manifest(opus_corpus)
    assert len(manifest["shards"]) == len(source["shards"]) > 1 and manifest["audio_format"] == fmt
    for new, old in zip(manifest["shards"], source["shards"]):
        assert new["path"] == old["path"] and new["clips"] == old["clips"] and new["source_sha256"] == old["sha256"]
        assert new["sha256"] == sha256_file(tmp_path / fmt / new["path"])
        with tarfile.open(tmp_path / fmt / new["path"]) as tar:
            assert {m.name.rsplit(".", 1)[1] for m in tar.getmembers()} == {ext, "json"}
        for a, b in zip(iter_shard(opus_corpus / old["path"]), iter_shard(tmp_path / fmt / new["path"])):
            assert (a.key, a.meta) == (b.key, b.meta)
            assert np.abs(a.audio - b.audio).max() <= 1 / 32768 + 1e-7  # one 16-bit step
    config = DataConfig(corpus=[str(opus_corpus)], crop_seconds=1.0, workers=0, domain_weights={"speech": 1.0})
    a = list(itertools.islice(iter(ShardStream(config, 3, seed=0)), 4))
    config.corpus = [str(tmp_path / fmt)]
    b = list(itertools.islice(iter(ShardStream(config, 3, seed=0)), 4))
    for x, y in zip(a, b):  # the same crops of the same clips, whatever the format
        assert [n.rsplit(":", 1)[1] for n in x.names] == [n.rsplit(":", 1)[1] for n in y.names]
        assert (x.pcm.int() - y.pcm.int()).abs().max() <= 1


def test_cli_bad_input_is_one_line_and_a_rerun_keeps_finished_shards(opus_corpus, tmp_path):
    x = str(tmp_path / "x")
    for args, message in [((str(tmp_path / "nowhere"), "flac", x), "no corpus manifest"),
                          ((str(opus_corpus), "mp3", x), "choose from flac, pcm16"),
                          ((str(opus_corpus), "flac", str(opus_corpus)), "another directory")]:
        result = usad("data", "transcode", args[0], "--to", args[1], "--out", args[2])
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
    out = tmp_path / "flac"
    assert usad("data", "transcode", str(opus_corpus), "--to", "flac", "--out", str(out)).returncode == 0
    first, second = sorted(out.glob("*.tar"))[:2]
    kept = first.stat().st_mtime_ns
    second.unlink()
    (out / "manifest.json").unlink()  # as after a kill before the end
    assert usad("data", "transcode", str(opus_corpus), "--to", "flac", "--out", str(out)).returncode == 0
    assert first.stat().st_mtime_ns == kept and second.is_file()
    assert json.loads((out / "manifest.json").read_text())["shards"][1]["sha256"] == sha256_file(second)
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    for f in opus_corpus.iterdir():
        (tampered / f.name).write_bytes(f.read_bytes())
    shard = sorted(tampered.glob("*.tar"))[0]
    shard.write_bytes(shard.read_bytes()[:-1024])
    result = usad("data", "transcode", str(tampered), "--to", "pcm16", "--out", str(tmp_path / "t"))
    assert result.returncode == 2 and shard.name in result.stderr and not (tmp_path / "t").exists()
