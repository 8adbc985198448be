"""``make demo`` in its reduced CI form: the whole pipeline runs on real audio and prints its table."""

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_quick_runs_end_to_end(shared, tmp_path):
    done = subprocess.run([sys.executable, "-m", "usad.demo", "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=900, env={**os.environ, "COLUMNS": "160"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for i, step in enumerate(("corpus", "distill", "export", "accuracy", "latency")):
        assert f"step {i + 1}/5: {step}" in out
    assert "untrained twin" in out and "demo finished in" in out
    model = tmp_path / "run" / "model"
    assert (model / "model.onnx").is_file() and (model / "config.json").is_file()
    (report_json,) = (tmp_path / "report").glob("*.json")
    report = json.loads(report_json.read_text())
    formats = {row["format"]: row for row in report["table"]}
    assert {"torch-fp32", "onnx-fp32"} <= set(formats)
    for row in formats.values():
        assert row["median_ms"] > 0 and 0 <= row["mean_score"] <= 1
    # The ONNX export is parity-checked, so its probe scores match torch's closely.
    assert abs(formats["onnx-fp32"]["mean_score"] - formats["torch-fp32"]["mean_score"]) < 0.05
    assert (tmp_path / "report" / report_json.name.replace(".json", ".png")).stat().st_size > 10_000

