"""``usad bench accuracy`` on CI-sized subsets: fbank probes far above chance and hurt by noise, a
random-init row, retention and the best-teacher row, reports, the embedding cache, and the CLI's
one-line errors for bad input and missing audio."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from usad.bench import encoders
from usad.bench.accuracy import run_accuracy
from usad.data.tasks import build_tasks

SHARED = Path("../shared")
pytestmark = pytest.mark.skipif(not (SHARED / "data" / "fsdd").is_dir(), reason="needs ../shared")
USAD = [str(Path(sys.executable).parent / "usad")]


@pytest.fixture(scope="module")
def task_audio(tmp_path_factory):
    out = tmp_path_factory.mktemp("tasks")
    report = build_tasks(out, ["T1-digit", "T4-drum"], limit_per_split=12)
    assert all(not info["problems"] for info in report.values())
    return out


def test_fbank_far_above_chance_hurt_by_noise_and_reports_written(task_audio, tmp_path):
    result = run_accuracy(["fbank", "random:usad-nano"], tmp_path, ["T1-digit", "T4-drum"], task_audio, seeds=2)
    fbank, random_row = result["models"]
    t1, t4 = fbank["tasks"]["T1-digit"], fbank["tasks"]["T4-drum"]
    assert t1["score"] > 3 * t1["chance"], t1  # 10-way, chance 0.1; speaker-held-out with 3 train speakers
    assert t4["score"] > t4["chance"] + 0.2, t4
    assert t1["ci_low"] <= t1["score"] <= t1["ci_high"]
    assert fbank["tasks"]["T1-digit@snr0"]["score"] < t1["score"] - 0.1  # 0 dB of real music or effects
    assert fbank["tasks"]["T1-digit@snr0"]["layer"] == t1["layer"]  # one probe, scored in every condition
    headline = [fbank["tasks"][c]["score"] for c in ("T1-digit", "T1-digit@snr0", "T4-drum", "T4-drum@snr0")]
    assert fbank["mean"] == pytest.approx(sum(headline) / 4)
    assert fbank["domains"]["speech content"] == pytest.approx(sum(headline[:2]) / 2)
    assert fbank["retention_mean"] == pytest.approx(1.0)  # no model dir given: fbank is the reference
    assert random_row["retention"]["T1-digit"] == pytest.approx(random_row["tasks"]["T1-digit"]["score"] / t1["score"])
    assert random_row["tasks"]["T1-digit"]["layer"] in range(5)  # usad-nano: 4 blocks + input layer
    assert result["best_teacher"] is None  # no teacher row given
    for name in ("accuracy.json", "accuracy.md", "accuracy.png"):
        assert (tmp_path / name).stat().st_size > 100
    markdown = (tmp_path / "accuracy.md").read_text()
    assert "| fbank (floor) |" in markdown and "## Per task, 0 dB" in markdown and "Protocol:" in markdown


def test_best_teacher_row_takes_the_best_teacher_per_column():
    from usad.bench.summary import best_teacher

    def row(name, scores):
        return {"model": name, "spec": f"teacher:{name}:x", "tasks": {c: {"score": s} for c, s in scores.items()}}
    ceiling = best_teacher([row("whisper", {"A": 0.9, "B": 0.2}), row("crepe", {"A": 0.5, "B": 0.7}),
                            {"model": "m", "spec": "models/m", "tasks": {"A": {"score": 1.0}, "B": {"score": 1.0}}}])
    assert ceiling["tasks"]["A"] == {"score": 0.9, "from": "whisper"}
    assert ceiling["tasks"]["B"] == {"score": 0.7, "from": "crepe"}


def test_embeddings_are_cached_per_model_task_and_condition(task_audio, tmp_path, monkeypatch):
    first = run_accuracy(["fbank"], tmp_path, ["T4-drum"], task_audio, seeds=1)

    def fail(*args):
        raise AssertionError("embeddings recomputed despite the cache")

    monkeypatch.setattr(encoders.FbankEncoder, "encode", fail)
    second = run_accuracy(["fbank"], tmp_path, ["T4-drum"], task_audio, seeds=1)
    assert first["models"][0]["tasks"] == second["models"][0]["tasks"]
    cached = sorted(p.name.split("-")[2] for p in (tmp_path / "cache").glob("*/T4-drum-*.npz"))
    assert cached == ["clean", "snr0", "snr5"]


def test_probe_trained_on_mixtures_when_asked(tmp_path):
    audio = tmp_path / "tasks"
    build_tasks(audio, ["T4-drum"], limit_per_split=6, train_mixtures=True)
    assert any((audio / "T4-drum" / "snr0").glob("drum__*"))
    result = run_accuracy(["fbank"], tmp_path / "o", ["T4-drum"], audio, seeds=1, conditions=("snr0",),
                          train_noisy=True, build_missing=False)
    row = result["models"][0]["tasks"]
    assert result["train_noisy"] and row["T4-drum@snr0"]["n_train"] == row["T4-drum"]["n_train"]
    assert "T4-drum@snr5" not in row


def test_bad_model_spec_names_itself():
    with pytest.raises(ValueError, match="not-a-model"):
        encoders.load_encoder("not-a-model")


def _usad(*args, env=None):
    return subprocess.run([*USAD, *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=300)


def test_cli_bad_input_is_one_line_and_nonzero(task_audio, tmp_path):
    for args, expected in [(["fbank", "not-a-model"], "not-a-model"),
                           (["fbank", "--tasks", "T99-nothing"], "unknown tasks"),
                           (["fbank", "--seeds", "0"], "seeds"),
                           (["fbank", "--condition", "snr-7"], "unknown conditions")]:
        done = _usad("bench", "accuracy", *args, "--tasks", "T4-drum", "--data", str(task_audio),
                     "--out", str(tmp_path / "o"))
        assert done.returncode == 2, done.stderr
        assert expected in done.stderr and "Traceback" not in done.stderr + done.stdout


def test_cli_task_with_missing_audio_names_what_to_install(tmp_path):
    env = {"USAD_SHARED": str(tmp_path / "nowhere")}
    done = _usad("data", "tasks", "--out", str(tmp_path / "t"), "--task", "T1-digit", env=env)
    assert done.returncode == 1 and "FSDD recordings not found: install the shared data folder" in done.stderr
    assert "Traceback" not in done.stderr
    done = _usad("bench", "accuracy", "fbank", "--tasks", "T1-digit", "--data", str(tmp_path / "t2"),
                 "--out", str(tmp_path / "o"), env=env)
    assert done.returncode == 2 and "T1-digit: skipped: FSDD recordings not found" in done.stderr
    assert "no task could be scored" in done.stderr and "Traceback" not in done.stderr


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



def test_runs_of_one_model_each_merge_into_one_report(tmp_path):
    from usad.bench.accuracy import merge_runs
    from usad.bench.probe import ProbeResult
    from usad.data.tasks import manifest_dir

    def run(model, spec, clean, noisy):
        def result(score):
            return ProbeResult(score, score - 0.05, score + 0.05, [score], 3, "mean", 1.0, score, 0.1, 10, 10).to_dict()
        tasks = {"T1-digit": result(clean[0]), "T1-digit@snr0": result(noisy[0]),
                 "T4-drum": result(clean[1]), "T4-drum@snr0": result(noisy[1])}
        path = tmp_path / f"{model}.json"
        path.write_text(json.dumps({
            "tasks": {"T1-digit": {}, "T4-drum": {}}, "conditions": ["clean", "snr0"], "seeds": 1,
            "models": [{"model": model, "spec": spec, "fingerprint": model, "tasks": tasks, "mean": 0}],
            "timing": {"seconds": {model: {"total": 9.0}}, "cpus": 2, "load_before": [1, 1, 1],
                       "load_after": [2, 2, 2]}}))
        return path

    runs = [run("fbank", "fbank", (0.4, 0.8), (0.1, 0.4)),
            run("whisper", "teacher:whisper:x", (0.9, 0.7), (0.6, 0.5)),
            run("aisfx", "teacher:aisfx:x", (0.3, 0.9), (0.2, 0.7))]
    result = merge_runs(runs, tmp_path / "out", manifest_dir())
    ceiling = result["best_teacher"]
    assert [ceiling["tasks"][c]["from"] for c in ("T1-digit", "T4-drum@snr0")] == ["whisper", "aisfx"]
    assert ceiling["mean"] == pytest.approx((0.9 + 0.6 + 0.9 + 0.7) / 4)
    fbank = result["models"][0]
    assert fbank["vs_best_teacher"]["mean"] == pytest.approx((0.4 + 0.1 + 0.8 + 0.4) / (0.9 + 0.6 + 0.9 + 0.7))
    assert fbank["vs_best_teacher"]["domains"]["sound"] == pytest.approx((0.8 + 0.4) / (0.9 + 0.7))
    # each teacher on its own domain's tasks only: speech (T1) vs whisper, sound (T4) vs aisfx
    assert fbank["vs_domain_teacher"] == {"speech vs whisper": pytest.approx((0.4 + 0.1) / (0.9 + 0.6)),
                                          "sound vs aisfx": pytest.approx((0.8 + 0.4) / (0.9 + 0.7))}
    assert set(result["timing"]["seconds"]) == {"fbank", "whisper", "aisfx"}
    report = (tmp_path / "out" / "accuracy.md").read_text()
    assert "**best teacher** (ceiling)" in report and "| speech vs whisper | sound vs aisfx |" in report
