"""Task audio rebuilds from the committed manifests bit-exactly; bad or missing sources are
reported per clip, never fatal."""

import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from usad.data.sources import SourcePaths
from usad.data.tasks import build_tasks, clip_path, load_manifest

SHARED = Path("../shared")
pytestmark = pytest.mark.skipif(not (SHARED / "data" / "fsdd").is_dir(), reason="needs ../shared")


def test_subset_rebuild_matches_committed_sha256(tmp_path):
    report = build_tasks(tmp_path, ["T1-digit", "T4-drum", "T5-instrument", "T6-vad", "T7-phrase", "T9-events"],
                         limit_per_split=1)
    for name, info in report.items():
        assert info["problems"] == [], (name, info["problems"][:3])
        assert info["rows"] > 0
    built = json.loads((tmp_path / "T4-drum.json").read_text())
    committed = {r["id"]: r for r in load_manifest("T4-drum")["rows"]}
    for row in built["rows"]:
        assert row["sha256"] == committed[row["id"]]["sha256"]
        info = sf.info(clip_path(tmp_path, "T4-drum", row["id"]))
        assert info.samplerate == 16000 and info.channels == 1
    scenes = json.loads((tmp_path / "T6-vad.json").read_text())["rows"]
    assert {r["split"] for r in scenes} == {"train", "val", "test"}
    for row in built["rows"]:  # val/test clips also in both noisy conditions, with their own hashes
        noisy = clip_path(tmp_path, "T4-drum", row["id"], "snr0")
        assert noisy.is_file() == (row["split"] != "train")


def test_missing_sources_are_reported_in_one_line_not_fatal(tmp_path):
    report = build_tasks(tmp_path / "out", ["T1-digit"], paths=SourcePaths(shared=tmp_path / "nowhere"),
                         limit_per_split=1)
    assert report["T1-digit"]["rows"] == 0
    assert report["T1-digit"]["problems"] == [report["T1-digit"]["missing"]]
    assert "FSDD recordings not found: install the shared data folder" in report["T1-digit"]["missing"]


def test_missing_interference_still_builds_the_clean_clips(tmp_path):
    paths = SourcePaths(games=tmp_path / "no-games")
    report = build_tasks(tmp_path / "out", ["T4-drum"], paths=paths, limit_per_split=1)
    assert report["T4-drum"]["rows"] > 0 and not report["T4-drum"]["problems"]
    assert "hedgewars-data" in report["T4-drum"]["noisy_missing"]
    built = json.loads((tmp_path / "out" / "T4-drum.json").read_text())["built"]
    assert built["conditions"] == [] and not (tmp_path / "out" / "T4-drum" / "snr0").exists()


def test_corrupt_source_file_is_reported_and_others_built(tmp_path):
    recordings = tmp_path / "shared" / "data" / "fsdd" / "recordings"
    recordings.mkdir(parents=True)
    for name in ("3_jackson_7", "4_theo_1", "5_george_2"):
        shutil.copy(SHARED / "data" / "fsdd" / "recordings" / f"{name}.flac", recordings)
    (recordings / "6_yweweler_3.flac").write_bytes(b"not audio at all")
    report = build_tasks(tmp_path / "out", ["T1-digit"], paths=SourcePaths(shared=tmp_path / "shared"),
                         regenerate=True)
    assert report["T1-digit"]["rows"] == 3
    (problem,) = report["T1-digit"]["problems"]
    assert "6_yweweler_3" in problem
    rows = json.loads((tmp_path / "out" / "T1-digit.json").read_text())["rows"]
    assert {r["split"] for r in rows} == {"train", "val", "test"}
