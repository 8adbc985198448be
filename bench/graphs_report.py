"""Issue 13's before/after report: per variant, today's graph (plain fp32 ONNX) against the fused graph and the
INT8 file the exporter shipped, eager torch and the CTranslate2 Whisper peer, all from one interleaved latency
run, with ONNX Runtime profile shares of the plain and shipped graphs.

    python -m usad.bench.graphs_report LATENCY.json MODEL_DIR... [--threads 2] [--out bench/results]

``scripts/bench_cpu_graphs.sh`` runs the whole measurement and then this.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from usad.bench.combined_report import load_warning, machine_line
from usad.bench.latency import latency_rows
from usad.config import SAMPLE_RATE
from usad.onnx_conventions import EXPORT_RECORD, FORMAT_FILES

TARGETS = {"vs_plain_fp32": 2.0, "vs_torch_fp32": 3.0, "cosine": 0.995, "vs_ct2_int8": 0.1, "export_s": 180.0}
PROFILE_TOP = 6


def op_shares(onnx_path: str | Path, seconds: float = 10.0, runs: int = 4) -> dict[str, float]:
    """Share of kernel time per op type: ONNX Runtime's profiler, one thread, ``runs`` calls on one clip after
    one warm-up (one thread, so the shares are the work, not the waits of a loaded machine)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    options.log_severity_level = 3
    options.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="usad-profile-") as tmp:
        options.profile_file_prefix = os.path.join(tmp, "profile")
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        samples = int(seconds * SAMPLE_RATE)
        feed = {"waveforms": (np.random.default_rng(0).standard_normal((1, samples)) * 0.1).astype(np.float32),
                "lengths": np.array([samples], dtype=np.int64)}
        for _ in range(runs + 1):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    totals: collections.Counter = collections.Counter()
    runs_seen = 0
    for event in events:
        if event.get("name") == "model_run":
            runs_seen += 1
        elif event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and runs_seen >= 1:
            totals[event["args"]["op_name"]] += event["dur"]  # after the warm-up run
    total = sum(totals.values()) or 1
    return {op: value / total for op, value in totals.most_common()}


FORMATS = ("torch-fp32", "onnx-fp32-plain", "onnx-fp32", "onnx-int8-static", "onnx-int8-dynamic", "onnx-int8-mixed",
           "peer-ct2-int8", "peer-ct2-fp32")


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _figures(rows, shipped_fmt: str, field: str) -> dict:
    """Per-format figures (``median_ms`` wall or ``cpu_ms``) of one variant's cells and the ratios of issue 13."""
    ms = {fmt: next((getattr(r, field) for r in rows if r.format == fmt and r.ok), None)
          for fmt in (*FORMATS, shipped_fmt)}
    return {"ms": ms, "shipped_ms": ms[shipped_fmt],
            "vs_plain_fp32": _ratio(ms["onnx-fp32-plain"], ms[shipped_fmt]),
            "vs_torch_fp32": _ratio(ms["torch-fp32"], ms[shipped_fmt]),
            "vs_ct2_int8": _ratio(ms[shipped_fmt], ms["peer-ct2-int8"]),
            "fused_fp32_vs_plain": _ratio(ms["onnx-fp32-plain"], ms["onnx-fp32"])}


def variant_summary(record: dict, model_dir: Path, threads: str) -> dict:
    """One variant: wall latencies at ``threads`` and one-thread CPU times (10 s, batch 1), ratios, the shipped
    file and recipe, its guard and export time, profile shares."""
    export = json.loads((model_dir / EXPORT_RECORD).read_text())
    rows = [r for r in latency_rows(record, model_dir.name) if r.batch == 1 and r.seconds == 10.0]
    int8 = export["files"].get("model.int8.onnx", {})
    guard = int8.get("guard", {})
    shipped = export.get("default", "model.onnx")
    recipe = int8.get("recipe") if shipped == "model.int8.onnx" else None
    shipped_fmt = f"onnx-int8-{recipe}" if recipe else next(f for f, name in FORMAT_FILES.items() if name == shipped)
    final = [a for a in guard.get("attempts", []) if a["recipe"] == int8.get("recipe")]
    return {"model": model_dir.name, "shipped": shipped, "recipe": recipe,
            "wall": _figures([r for r in rows if str(r.threads) == threads], shipped_fmt, "median_ms"),
            "cpu_1_thread": _figures([r for r in rows if str(r.threads) == "1"], shipped_fmt, "cpu_ms"),
            "cosine": final[-1]["cosine"] if final else None, "choice": guard.get("choice", {}).get("reason"),
            "export_s": int8.get("export_seconds"),
            "profile": {"plain fp32": op_shares(model_dir / FORMAT_FILES["onnx-fp32-plain"]),
                        "shipped": op_shares(model_dir / shipped)}}


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _met(value, target: float, higher: bool) -> str:
    if value is None:
        return "-"
    return "yes" if (value >= target if higher else value <= target) else "**no**"


def _table(variants: list[dict], key: str) -> list[str]:
    lines = ["| model | eager torch | plain fp32 | fused fp32 | static | dynamic | mixed | shipped | x plain fp32 "
             "| x torch | x CT2 INT8 | per-frame cosine | export s |", "|" + "---|" * 13]
    for v in variants:
        f = v[key]
        ms = f["ms"]
        lines.append(
            f"| {v['model']} | {_fmt(ms['torch-fp32'], '.1f')} | {_fmt(ms['onnx-fp32-plain'], '.1f')} | "
            f"{_fmt(ms['onnx-fp32'], '.1f')} | {_fmt(ms['onnx-int8-static'], '.1f')} | "
            f"{_fmt(ms['onnx-int8-dynamic'], '.1f')} | {_fmt(ms['onnx-int8-mixed'], '.1f')} | "
            f"{v['recipe'] or v['shipped']} {_fmt(f['shipped_ms'], '.1f')} | {_fmt(f['vs_plain_fp32'], '.2f')} "
            f"({_met(f['vs_plain_fp32'], TARGETS['vs_plain_fp32'], True)}) | {_fmt(f['vs_torch_fp32'], '.2f')} "
            f"({_met(f['vs_torch_fp32'], TARGETS['vs_torch_fp32'], True)}) | {_fmt(f['vs_ct2_int8'], '.3f')} | "
            f"{_fmt(v['cosine'], '.5f')} | {_fmt(v['export_s'], '.0f')} |")
    return lines


def report_markdown(record: dict, variants: list[dict], threads: str) -> str:
    lines = ["# CPU graphs: before (today's plain graph) and after (fused attention, INT8 recipes)", "",
             f"Machine: {machine_line(record)}", "", load_warning(record), "",
             "10 s clip, batch 1, one interleaved run (every format of a model in the same rounds, the CTranslate2 "
             "Whisper tiny.en encoder too: 30 s of features, what it takes for any clip up to 30 s). Targets: "
             "shipped >= 2.0x plain fp32 ONNX and >= 3.0x eager torch, per-frame cosine >= 0.995, usad-tiny <= "
             "0.1x CTranslate2 INT8, export <= 180 s (wall, this run).", "",
             f"## Wall latency, median ms, {threads} threads", ""] + _table(variants, "wall")
    lines += ["", "## CPU time of the call, median ms, 1 thread (the work, without a loaded machine's waits)", ""]
    lines += _table(variants, "cpu_1_thread")
    lines += ["", "## Why: ONNX Runtime profile shares (10 s, 1 thread), top op types", ""]
    for v in variants:
        for graph, shares in v["profile"].items():
            top = ", ".join(f"{op} {share:.0%}" for op, share in list(shares.items())[:PROFILE_TOP])
            lines.append(f"- {v['model']}, {graph}: {top}")
    lines += ["", "## What each exporter chose", ""] + [f"- {v['model']}: {v['choice']}" for v in variants]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    from usad.bench.writer import write_report

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("latency", type=Path, help="the latency record (JSON) of usad bench latency")
    parser.add_argument("models", type=Path, nargs="+", help="the model dirs it timed (their export.json)")
    parser.add_argument("--threads", default="2")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    record = json.loads(args.latency.read_text())
    variants = [variant_summary(record, m, args.threads) for m in args.models]
    summary = {"latency_record": str(args.latency), "targets": TARGETS, "variants": variants}
    paths = write_report(args.out, "cpu_graphs", summary, report_markdown(record, variants, args.threads))
    print(paths["md"].read_text())


if __name__ == "__main__":
    main()
