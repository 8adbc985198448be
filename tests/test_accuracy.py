"""``usad bench accuracy`` on CI-sized subsets of T1 and T4: fbank probes far above chance, a
random-init encoder row, retention, reports, and the embedding cache."""

import json
from pathlib import Path

import pytest

from usad.bench import encoders
from usad.bench.accuracy import run_accuracy
from usad.data.tasks import build_tasks

SHARED = Path("../shared")
pytestmark = pytest.mark.skipif(not (SHARED / "data" / "fsdd").is_dir(), reason="needs ../shared")


@pytest.fixture(scope="module")
def task_audio(tmp_path_factory):
    out = tmp_path_factory.mktemp("tasks")
    report = build_tasks(out, ["T1-digit", "T4-drum"], limit_per_split=12)
    assert all(not info["problems"] for info in report.values())
    for name in ("T1-digit", "T4-drum"):  # mark the built manifests as subsets
        path = out / f"{name}.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "subset": "limit_per_split=12"}))
    return out


def test_fbank_far_above_chance_and_reports_written(task_audio, tmp_path):
    result = run_accuracy(["fbank", "random:usad-nano"], tmp_path, ["T1-digit", "T4-drum"], task_audio, seeds=2)
    fbank, random_row = result["models"]
    t1, t4 = fbank["tasks"]["T1-digit"], fbank["tasks"]["T4-drum"]
    assert t1["score"] > 3 * t1["chance"], t1  # 10-way, chance 0.1; speaker-held-out with 3 train speakers
    assert t4["score"] > t4["chance"] + 0.2, t4
    assert t1["ci_low"] <= t1["score"] <= t1["ci_high"]
    assert fbank["retention_mean"] == pytest.approx(1.0)  # no model dir given: fbank is the reference
    assert random_row["retention"]["T1-digit"] == pytest.approx(random_row["tasks"]["T1-digit"]["score"] / t1["score"])
    assert random_row["tasks"]["T1-digit"]["layer"] in range(5)  # usad-nano: 4 blocks + input layer
    for name in ("accuracy.json", "accuracy.md", "accuracy.png"):
        assert (tmp_path / name).stat().st_size > 100
    assert "| fbank |" in (tmp_path / "accuracy.md").read_text()


def test_embeddings_are_cached_per_model_and_task(task_audio, tmp_path, monkeypatch):
    first = run_accuracy(["fbank"], tmp_path, ["T4-drum"], task_audio, seeds=1)

    def fail(*args):
        raise AssertionError("embeddings recomputed despite the cache")

    monkeypatch.setattr(encoders.FbankEncoder, "encode", fail)
    second = run_accuracy(["fbank"], tmp_path, ["T4-drum"], task_audio, seeds=1)
    assert first["models"][0]["tasks"] == second["models"][0]["tasks"]
    assert len(list((tmp_path / "cache").glob("*/T4-drum-*.npz"))) == 1


def test_bad_model_spec_names_itself():
    with pytest.raises(ValueError, match="not-a-model"):
        encoders.load_encoder("not-a-model")


def test_onnx_model_dir_goes_through_the_runtime():
    import warnings

    import numpy as np

    default = Path(__file__).resolve().parents[1] / "usad" / "assets" / "usad-default"
    if not any(default.glob("*.onnx")):
        pytest.skip("no packaged ONNX model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder = encoders.load_encoder(str(default))
    assert isinstance(encoder, encoders.BackendEncoder) and encoder.frame_rate == 50
    hidden, frames = encoder.encode(np.zeros((2, 16000), np.float32), np.array([16000, 8000]))
    assert hidden.shape[:2] == (len(encoder.backend.layers), 2) and frames.tolist() == [49, 24]
