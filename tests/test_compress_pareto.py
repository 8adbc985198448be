"""The Pareto report of a model family: GFLOPs from the model dirs, retention with a CI against the
reference row, the frontier, and the files it writes."""

import json

import pytest

import usad
from usad.bench.pareto import frontier, pareto_report
from usad.model import create_model


def _task(score, half):
    return {"score": score, "ci_low": score - half, "ci_high": score + half}


def test_pareto_report_of_a_family(tmp_path):
    dirs = {name: usad.save(create_model(name), tmp_path / name) for name in ("usad-tiny", "usad-nano-25hz")}
    accuracy = {"reference": "usad-tiny", "models": [
        {"model": "usad-tiny", "spec": str(dirs["usad-tiny"]),
         "tasks": {"T1": _task(0.9, 0.04), "T4": _task(0.7, 0.06), "T6": _task(0.8, 0.02)}},
        {"model": "usad-nano-25hz", "spec": str(dirs["usad-nano-25hz"]),
         "tasks": {"T1": _task(0.81, 0.05), "T4": _task(0.63, 0.07), "T6": None}},
        {"model": "fbank", "spec": "fbank", "tasks": {"T1": _task(0.5, 0.05), "T4": _task(0.4, 0.05), "T6": None}},
    ]}
    (tmp_path / "accuracy.json").write_text(json.dumps(accuracy))
    (tmp_path / "latency.json").write_text(json.dumps({"usad-tiny": 0.004, "usad-nano-25hz": 0.001}))
    table = pareto_report(tmp_path / "accuracy.json", tmp_path / "out", tmp_path / "latency.json")

    assert table["tasks"] == ["T1", "T4"]  # T6 was not scored by every model
    full, nano, fbank = table["rows"]
    assert full["retention"] == 1.0 and full["mean"] == pytest.approx(0.8)
    assert nano["retention"] == pytest.approx(0.72 / 0.8)
    low, high = nano["retention_ci"]
    assert low < nano["retention"] < high and high - low < 0.2
    assert nano["flops_reduction"] == pytest.approx(0.697 / 0.162, rel=0.02)
    assert nano["parameters"] == 2_050_640 and nano["frame_rate"] == 25
    assert full["pareto_gflops_per_second"] and nano["pareto_gflops_per_second"]
    assert "gflops_per_second" not in fbank and nano["cpu_rtf"] == 0.001
    for name in ("pareto.json", "pareto.md", "pareto.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert "| usad-nano-25hz | 2.05 |" in (tmp_path / "out" / "pareto.md").read_text()


def test_frontier_drops_dominated_points():
    rows = [{"cost": 1.0, "mean": 0.7}, {"cost": 2.0, "mean": 0.6}, {"cost": 3.0, "mean": 0.9}, {"mean": 0.5}]
    frontier(rows, "cost")
    assert [r.get("pareto_cost") for r in rows] == [True, False, True, None]


def test_suite_with_noisy_conditions_uses_its_headline_columns(tmp_path):
    """Clean and 0 dB enter the mean, as in the accuracy report's headline; 5 dB does not."""
    tasks = {"T1": _task(0.9, 0.04), "T1@snr5": _task(0.1, 0.04), "T1@snr0": _task(0.5, 0.04)}
    accuracy = {"reference": "a", "headline": ["clean", "snr0"],
                "columns": {"T1": ["T1", "clean"], "T1@snr5": ["T1", "snr5"], "T1@snr0": ["T1", "snr0"]},
                "models": [{"model": "a", "spec": "a", "tasks": tasks}]}
    (tmp_path / "accuracy.json").write_text(json.dumps(accuracy))
    table = pareto_report(tmp_path / "accuracy.json", tmp_path / "out")
    assert table["tasks"] == ["T1", "T1@snr0"] and table["rows"][0]["mean"] == pytest.approx(0.7)
    assert "| T1 | Pareto |" in (tmp_path / "out" / "pareto.md").read_text()
