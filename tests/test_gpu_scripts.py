"""CPU dry run of the GPU campaign scripts at tiny sizes: stage two payload parts of real audio, transcode,
two background runs sharing the machine, wait, export within the transfer limits, stop with exit 75,
unpack the exported resume pack into a model dir, and the decode bench script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from usad.audio import load_audio
from usad.config import SAMPLE_RATE
from usad.data.shards import ShardWriter, encode_opus
from usad.modeldir import load
from usad.teachers import prepare

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
pytestmark = pytest.mark.skipif(not (SHARED / "teachers/whisper-tiny.en").is_dir(), reason="needs ../shared")


def campaign(env: dict, *args: str, timeout: int = 300) -> str:
    result = subprocess.run(["bash", "scripts/gpu/campaign.sh", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_campaign_dry_run(tmp_path):
    payload = tmp_path / "payload"
    files = sorted((SHARED / "data/gcompris-voices").rglob("*.ogg"))[:48]
    writer = ShardWriter(payload / "part1/corpus-a", max_bytes=20_000)
    for i, path in enumerate(files):
        audio = load_audio(path)
        writer.write(f"c{i:02d}", encode_opus(audio), {"domain": ("speech", "music")[i % 2], "source": "gcompris",
                                                       "seconds": len(audio) / SAMPLE_RATE})
    manifest = writer.close()
    later = [s["path"] for s in manifest["shards"][len(manifest["shards"]) // 2:]]
    (payload / "part2/corpus-a").mkdir(parents=True)
    for name in later:  # part 2 carries the second half of the shards, part 1 the rest and the manifest
        (payload / "part1/corpus-a" / name).rename(payload / "part2/corpus-a" / name)
    crepe = prepare("crepe-tiny", tmp_path / "teachers/crepe-tiny")
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "student": {"preset": "usad-nano"},
        "teachers": [{"name": "speech", "spec": f"whisper:{SHARED / 'teachers/whisper-tiny.en'}"},
                     {"name": "music", "spec": f"crepe:{crepe}", "options": {"hop": 1600}}],
        "data": {"crop_seconds": 1.0, "domain_weights": {"speech": 1.0, "music": 1.0}, "shuffle_clips": 8},
        "train": {"batch_size": 4, "warmup_steps": 2, "precision": "fp32", "compile": False, "ckpt_every": 3,
                  "log_every": 1}}))
    stage, out = tmp_path / "stage", tmp_path / "out"
    env = {**os.environ, "LOCAL": "1", "PY": sys.executable, "STAGE": str(stage), "OUT": str(out),
           "CONFIG": str(config), "TEACHERS": str(tmp_path / "teachers"), "WORKERS": "1", "OMP_NUM_THREADS": "1",
           "POLL": "2"}
    assert "ok: torch" in campaign(env, "setup", str(payload / "part1"))
    campaign(env, "stage", str(payload / "part2"))
    campaign(env, "transcode")
    assert json.loads((stage / "corpus-a-flac/manifest.json").read_text())["audio_format"] == "flac"
    started = campaign(env | {"STEPS": "6", "MINUTES": "5"}, "train", "run-a", "corpus-a", "run-b", "corpus-a")
    assert started.count("started") == 2
    status = campaign(env, "wait", "4", timeout=400)
    assert "run-a: finished step 6/6" in status and "run-b: finished step 6/6" in status, status
    campaign(env, "export", "run-a")
    exported = sorted((out / "run-a").iterdir())
    assert len(exported) <= 8 and all(f.stat().st_size <= 16 * 2**20 for f in exported)
    assert {"resume.json", "train_log.jsonl"} <= {f.name for f in exported}
    unpacked = subprocess.run([sys.executable, "scripts/gpu/distill_unpack.py", str(out / "run-a"),
                               str(tmp_path / "model")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert unpacked.returncode == 0, unpacked.stderr
    assert load(tmp_path / "model").config.name == "usad-nano"
    # A longer run stopped by `campaign.sh stop`: SIGTERM, checkpoint, exit code 75 in its log.
    campaign(env | {"STEPS": "500", "MINUTES": "5"}, "train", "run-c", "corpus-a")
    log = stage / "runs/run-c/train_log.jsonl"
    for _ in range(120):
        if log.is_file() and log.read_text().count("\n") >= 2:
            break
        subprocess.run(["sleep", "1"])
    assert "run-c: interrupted" in campaign(env, "stop")
    bench = subprocess.run(["bash", "scripts/gpu/decode_bench.sh"], cwd=ROOT, capture_output=True, text=True,
                           timeout=300, env=env | {"CORPUS": str(stage / "raw/corpus-a"), "WORKERS": "1",
                                                   "MINUTES": "1", "ROUNDS": "1", "CELL": "1"})
    assert bench.returncode == 0, bench.stderr
    record = json.loads(next(out.glob("*_decode.json")).read_text())
    assert {row["format"] for row in record["rows"]} == {"source", "flac", "pcm16"}
