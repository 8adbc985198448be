"""The combined report renders (markdown, JSON, PNG), judges the targets, and feeds the README table."""

import importlib.util
import json
from pathlib import Path

import pytest

from usad.bench.combined_report import (
    build_report,
    check_targets,
    latency_markdown,
    latest_report,
    load_targets,
    readme_section,
    write_combined_report,
)
from usad.bench.latency import Grid, run_latency
from usad.bench.pareto import pareto_front

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def latency():
    grid = Grid(seconds=(1.0, 10.0), threads=(1,), formats=("torch-fp32",), warmup=1, min_rounds=3, max_rounds=3,
                cell_budget_s=0.1, memory=False)
    return run_latency(["usad-nano"], grid, device="cpu", log=lambda m: None)


def _accuracy(spec: str, model: str) -> dict:
    """The shape ``usad.bench.accuracy.run_accuracy`` returns, for two tasks and two rows."""
    def row(name, spec, scores, retention):
        return {"model": name, "spec": spec, "tasks": {t: {"score": s} for t, s in scores.items()},
                "mean": sum(scores.values()) / 2, "retention_mean": retention}
    return {"reference": model, "seeds": 1, "tasks": {"T1-digit": {}, "T4-drum": {}},
            "models": [row(model, spec, {"T1-digit": 0.8, "T4-drum": 0.6}, 1.0),
                       row("random", "random:usad-nano", {"T1-digit": 0.3, "T4-drum": 0.4}, 0.5)]}


def test_report_renders_markdown_json_png(latency, tmp_path):
    accuracy = _accuracy("usad-nano", "usad-nano")
    report = build_report(latency, accuracy, {"usad-nano": ("usad-nano", "torch-fp32")})
    row = report["table"][0]
    assert (row["model"], row["format"]) == ("usad-nano", "torch-fp32")
    assert row["mean_score"] == pytest.approx(0.7) and row["median_ms"] > 0 and row["rtf"] > 0
    paths = write_combined_report(report, tmp_path)
    assert paths["json"].name.startswith(latency["created"][:10]) and latency["machine"]["slug"] in paths["json"].name
    assert json.loads(paths["json"].read_text())["table"] == json.loads(json.dumps(report["table"]))
    markdown = paths["md"].read_text()
    assert latency["machine"]["cpu"] in markdown and "| usad-nano (untrained) | torch-fp32 |" in markdown
    assert "0.700" in markdown and "## Targets" in markdown and paths["png"].name in markdown
    png = paths["png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert latest_report(tmp_path) == paths["json"]


def test_latency_markdown_has_every_row(latency):
    text = latency_markdown(latency)
    assert text.count("| torch-fp32 |") == len(latency["rows"]) == 2
    assert "GEMM rates measured in this run" in text and "fresh weights" in text


def test_targets_met_and_missed():
    def rows(model, fmt, rtf, x_floor):
        return {"model": model, "format": fmt, "precision": "int8", "gflop": 1.0, "seconds": 10.0, "batch": 1,
                "threads": "all", "rtf": rtf, "x_floor": x_floor, "median_ms": rtf * 1e4, "throughput": 1 / rtf}
    models = [{"name": "s", "variant": "usad-small"}, {"name": "t", "variant": "usad-tiny"}]
    record = {"device": "cpu", "models": models,
              "rows": [rows("s", "onnx-int8", 0.03, 2.0), rows("t", "onnx-int8", 0.002, 4.0)]}
    found = check_targets(record, load_targets())
    get = lambda model, kind: next(t for t in found if t["target"].startswith(model + " ") and kind in t["target"])  # noqa: E731
    assert len(found) == 4
    assert get("s", "RTF")["met"] is False and get("s", "RTF")["missed_by"] == pytest.approx(1.5)
    assert get("t", "RTF")["met"] is True and get("t", "RTF")["missed_by"] is None
    assert get("s", "RTF")["limit"] == 0.02 and get("t", "RTF")["limit"] == 0.004
    assert get("s", "floor")["met"] is True and get("t", "floor")["missed_by"] == pytest.approx(1.6)
    gpu = {"device": "cuda", "models": [{"name": "s", "variant": "usad-small"}],
           "rows": [rows("s", "cuda-fp32", 0.01, None), rows("s", "cuda-bf16-graphs", 0.004, None)]}
    (speedup,) = check_targets(gpu, load_targets())
    assert speedup["value"] == pytest.approx(2.5) and speedup["missed_by"] == pytest.approx(2.0)


def test_pareto_front():
    # (latency, score): b beats c on both; a is fastest; d is best.
    points = [(1.0, 0.5), (2.0, 0.7), (3.0, 0.6), (5.0, 0.9)]
    assert pareto_front(points) == [0, 1, 3]


def test_readme_block_is_replaced_in_place(latency, tmp_path):
    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "scripts" / "update_readme_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = build_report(latency)
    block = readme_section(report, "bench/results/x.json")
    assert latency["machine"]["cpu"] in block and "| usad-nano (untrained) | torch-fp32 |" in block
    once = module.replace_block("# Title\n\ntext\n", block)
    assert once.count(module.START) == 1 and "## Results" in once
    twice = module.replace_block(once.replace("torch-fp32", "OLD"), block)
    assert twice == once
    readme = tmp_path / "README.md"
    readme.write_text(once)
    paths = write_combined_report(report, tmp_path)
    accuracy = {"reference": "usad-nano", "models": [
        {"model": "usad-nano", "spec": "usad-nano", "mean": 0.5, "retention_mean": 1.0,
         "vs_best_teacher": {"mean": 0.8}, "vs_domain_teacher": {"speech vs whisper": 0.7}}],
        "best_teacher": {"model": "best teacher", "spec": "best-teacher", "mean": 0.625}}
    (tmp_path / "accuracy.json").write_text(json.dumps(accuracy))
    assert module.main(["--report", str(paths["json"]), "--readme", str(readme),
                        "--accuracy", str(tmp_path / "accuracy.json")]) == 0
    text = readme.read_text()
    assert text.count(module.END) == 1 and text.count(module.MODELS_END) == 1
    assert "| usad-nano |  |  |  | 50.0 | 1.000 | 0.800 | 0.700 |" in text and "| **best teacher** |" in text
