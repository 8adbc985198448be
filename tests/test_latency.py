"""The latency harness on tiny encoders: sane, ordered figures; formats that cannot run say why."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import usad
from usad.bench.floor import gemm_rate, ort_int8_gemm_rate
from usad.bench.harness import summarize, time_cell
from usad.bench.latency import Grid, run_latency
from usad.bench.memory import measure_peak_rss
from usad.bench.runners import BenchModel, FormatUnavailable, make_runner
from usad.cli import app

# A few-layer encoder that times in milliseconds, so the ordering checks are cheap.
SMALL = {"dim": 64, "depth": 2, "heads": 2, "pos_conv_groups": 16}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from usad.export.onnx_export import export_onnx

    torch.manual_seed(0)
    model = usad.create_model("usad-nano", **SMALL)
    directory = usad.save(model, tmp_path_factory.mktemp("bench") / "mini", extra={"untrained": True})
    export_onnx(model, directory / "model.onnx")
    return directory


@pytest.fixture(scope="module")
def record(model_dir):
    grid = Grid(seconds=(1.0, 30.0), threads=(1,), formats=("torch-fp32", "onnx-fp32", "onnx-int8"), warmup=1,
                min_rounds=5, max_rounds=7, cell_budget_s=0.5, memory=True)
    return run_latency([str(model_dir)], grid, device="cpu", log=lambda m: None)


def _row(record, fmt, seconds):
    return next(r for r in record["rows"] if r["format"] == fmt and r["seconds"] == seconds)


@pytest.mark.parametrize("fmt", ["torch-fp32", "onnx-fp32"])
def test_figures_are_ordered_and_consistent(record, fmt):
    short, long = _row(record, fmt, 1.0), _row(record, fmt, 30.0)
    assert long["median_ms"] > 3 * short["median_ms"]  # 30x the audio cannot cost about the same
    for row in (short, long):
        assert row["rounds"] >= 5
        assert row["p95_ms"] >= row["median_ms"] >= row["min_ms"] > 0
        assert row["rtf"] == pytest.approx(row["median_ms"] / 1e3 / row["seconds"])
        assert row["throughput"] * row["rtf"] == pytest.approx(1.0)
        # The floor is a lower bound: nothing runs faster than the measured GEMM rate allows.
        assert 0 < row["floor_ms"] < row["median_ms"] and row["x_floor"] > 1
    assert long["gflop"] > 30 * short["gflop"] * 0.9


def test_model_entry_and_skips(record, model_dir):
    entry = record["models"][0]
    assert entry["params"] == sum(p.numel() for p in usad.load(model_dir).parameters())
    assert entry["gflops_per_second"] > 0 and entry["untrained"]
    assert "no " in entry["formats"]["onnx-int8"]["skipped"] and "--int8" in entry["formats"]["onnx-int8"]["skipped"]
    assert not any(r["format"] == "onnx-int8" for r in record["rows"])
    assert entry["formats"]["onnx-fp32"]["file_bytes"] == (model_dir / "model.onnx").stat().st_size
    memory = entry["formats"]["onnx-fp32"]["memory"]
    # The ONNX probe imports no torch, so its footprint sits well below the torch one.
    assert memory["peak_rss_mb"] > memory["baseline_rss_mb"] > 0
    assert memory["peak_rss_mb"] < entry["formats"]["torch-fp32"]["memory"]["peak_rss_mb"]
    assert record["floors"]["1"]["fp32"]["gflops"] > 0 and record["floors"]["1"]["int8"]["gops"] > 0
    assert record["machine"]["slug"] and record["load_before"] is not None


def test_interleaved_rounds_time_every_format():
    calls = []
    runners = {name: (lambda x, name=name: calls.append(name)) for name in "abc"}
    times, errors = time_cell(runners, {n: None for n in runners}, warmup=1, min_rounds=4, max_rounds=4)
    assert not errors and all(len(t) == 4 for t in times.values())
    timed = calls[6:]  # after 3 warm-up and 3 probe calls: rounds rotate the order
    assert timed[:3] == ["a", "b", "c"] and timed[3:6] == ["b", "c", "a"]


def test_a_failing_format_is_reported_not_fatal():
    def broken(_):
        raise RuntimeError("out of memory")

    times, errors = time_cell({"ok": lambda _: None, "bad": broken}, {"ok": 0, "bad": 0}, min_rounds=3, max_rounds=3)
    assert "out of memory" in errors["bad"] and len(times["ok"]) == 3


def test_summarize_percentiles():
    stats = summarize([0.1, 0.2, 0.3, 0.4, 1.0], audio_seconds=10.0)
    assert stats["median_ms"] == pytest.approx(300) and stats["p95_ms"] == pytest.approx(880)  # linear interpolation
    assert stats["rtf"] == pytest.approx(0.03)


def test_floor_rates_and_flops():
    assert gemm_rate([(256, 256, 256)], threads=1, min_time=0.05)["gflops"] > 1
    assert ort_int8_gemm_rate([(256, 256, 256)], threads=1, min_time=0.05)["gops"] > 1
    model = usad.create_model("usad-nano", **SMALL).eval()
    assert model.flops(2.0, batch=4) == pytest.approx(4 * model.flops(2.0))
    assert model.flops(20.0) > 9.5 * model.flops(2.0)  # attention: a little worse than linear


def test_bad_specs_and_formats(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a model directory nor a preset"):
        BenchModel.resolve(tmp_path / "missing")
    with pytest.raises(FormatUnavailable, match="preset without a model dir"):
        make_runner("onnx-fp32", BenchModel.resolve("usad-nano"), 1)
    with pytest.raises(FormatUnavailable, match="no peer dir"):
        make_runner("peer-ct2-int8", BenchModel.resolve("usad-nano"), 1)
    with pytest.raises(FormatUnavailable, match="ctranslate2|model.bin"):
        make_runner("peer-ct2-fp32", BenchModel.resolve("usad-nano"), 1, peer=tmp_path)
    with pytest.raises(FormatUnavailable, match="CUDA"):
        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
        make_runner("cuda-bf16-graphs", BenchModel.resolve("usad-nano"), 1)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{")
    with pytest.raises(usad.ModelDirError, match="config.json"):
        BenchModel.resolve(tmp_path / "bad")


def test_memory_probe_reports_a_broken_file(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not onnx")
    assert "error" in measure_peak_rss("onnx-fp32", tmp_path, 1.0, 1, 1, timeout=60)


def test_cli_latency_writes_json(tmp_path):
    result = CliRunner().invoke(app, ["bench", "latency", "usad-nano", "--seconds", "1", "--threads", "1",
                                      "--formats", "torch-fp32", "--no-memory", "--rounds", "3",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (out,) = tmp_path.glob("*_latency.json")
    assert out.with_suffix(".md").is_file()
    record = json.loads(out.read_text())
    assert [r["format"] for r in record["rows"]] == ["torch-fp32"] and np.isfinite(record["rows"][0]["median_ms"])
    bad = CliRunner().invoke(app, ["bench", "latency", "usad-nano", "--formats", "torch-fp33"])
    assert bad.exit_code == 2 and "unknown format" in bad.output
