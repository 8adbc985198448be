"""One bench report: latency and accuracy per model x format, retention against the full model,
the issue's targets (met or missed, by how much), a Pareto plot (score vs latency).

Files: ``bench/results/<date>_<machine>.json|.md|.png`` (``report_paths``). The README's results
table is rendered from the newest report by ``scripts/update_readme_results.py``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from usad.bench.harness import RESULTS_DIR
from usad.bench.latency import LatencyRow, latency_rows
from usad.bench.pareto import pareto_front
from usad.bench.writer import write_report

HEADLINE = {"seconds": 10.0, "batch": 1, "threads": "all"}  # the cell a user's single-clip latency is read from
TARGETS_FILE = Path(__file__).resolve().parent / "targets.json"


def _fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def _mb(nbytes: int | None) -> str:
    return "-" if nbytes is None else f"{nbytes / 2**20:.1f}"


def _peak(info: dict) -> str:
    memory = info.get("memory") or {}
    value = memory.get("peak_rss_mb", memory.get("peak_cuda_mb"))
    return _fmt(value, ".0f")


def machine_line(record: dict) -> str:
    machine = record["machine"]
    where = machine.get("gpu") or f"{machine['cpu']}, {machine['cores']} cores"
    return (f"{where}; torch {machine['torch']}, onnxruntime {machine.get('onnxruntime', '-')}; "
            f"load average before/after {record.get('load_before')}/{record.get('load_after')}; {record['created']}")


def load_warning(record: dict) -> str:
    """A caution when other processes held more cores than the machine has while it ran."""
    load, cores = record.get("load_before") or [0.0], record["machine"]["cores"]
    if record["device"] != "cpu" or load[0] <= cores:
        return ""
    return (f"**Caution: load average {load[0]:.1f} on {cores} cores when the bench started.** Other processes "
            "shared the cores; multi-thread figures suffer most (threads wait on each other), single-thread "
            "ones least. Re-run on an idle machine before reading them as this CPU's speed.")


def latency_markdown(record: dict) -> str:
    """All latency rows, one table per model, with a floor row per cell."""
    lines = [f"# Latency ({record['device']})", "", f"Machine: {machine_line(record)}", "", load_warning(record), ""]
    for key, floor in record["floors"].items():
        rates = ", ".join(f"{p} {r.get('gflops', r.get('gops')):.0f} G{'OP' if 'gops' in r else 'FLOP'}/s "
                          f"({r['shape']})" for p, r in floor.items())
        lines.append(f"- GEMM rates measured in this run, threads {key}: {rates}")
    for entry in record["models"]:
        lines += ["", f"## {entry['name']}: {entry['params'] / 1e6:.1f} M params, "
                      f"{entry['gflops_per_second']:.2f} GFLOPs per second of audio"
                      + (" (fresh weights: latency only)" if entry["untrained"] else ""), ""]
        for fmt, info in entry["formats"].items():
            if "skipped" in info:
                lines.append(f"- {fmt}: skipped ({info['skipped']})")
        lines += ["", "| format | threads | batch | input s | median ms | p95 ms | RTF | audio s/s | floor ms "
                      "| x floor | peak mem MB | file MB |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in sorted(latency_rows(record, entry["name"]), key=lambda r: (str(r.threads), r.batch, r.seconds)):
            info = entry["formats"].get(row.format, {})
            if not row.ok:
                lines.append(f"| {row.format} | {row.threads} | {row.batch} | {row.seconds:g} | "
                             f"failed: {row.error[:80]} | | | | | | | |")
                continue
            lines.append(f"| {row.format} | {row.threads} | {row.batch} | {row.seconds:g} | "
                         f"{row.median_ms:.1f} | {row.p95_ms:.1f} | {row.rtf:.4f} | {row.throughput:.0f} | "
                         f"{_fmt(row.floor_ms, '.1f')} | {_fmt(row.x_floor, '.2f')} | {_peak(info)} | "
                         f"{_mb(info.get('file_bytes'))} |")
    return "\n".join(lines) + "\n"


def _cell(rows: list[LatencyRow], model: str, fmt: str, cell: dict) -> LatencyRow | None:
    for row in rows:
        if row.model == model and row.format == fmt and row.ok and all(getattr(row, k) == v for k, v in cell.items()):
            return row
    return None


@dataclass
class ReportRow:
    """One model x format of the report: latency at the headline cell, size, memory and task scores."""

    model: str
    format: str
    params: int
    untrained: bool
    gflops_per_second: float
    file_bytes: int | None
    peak_mem_mb: float | None
    median_ms: float | None
    p95_ms: float | None
    rtf: float | None
    x_floor: float | None
    mean_score: float | None
    retention: float | None  # mean score / the reference's
    tasks: dict[str, float | None] | None
    score_from: str | None  # the format whose score this row shows, when it has none of its own

    def to_dict(self) -> dict:
        return asdict(self)


def report_rows(report: dict) -> list[ReportRow]:
    return [ReportRow(**row) for row in report["table"]]


def load_targets(path: str | Path = TARGETS_FILE) -> dict:
    """The targets file (``bench/targets.json`` by default): limits the report marks as met or missed."""
    return json.loads(Path(path).read_text())


def check_targets(latency: dict, targets: dict) -> list[dict]:
    """``targets`` against the measured rows: value, limit, met, and the factor by which it is missed."""
    results, rows = [], latency_rows(latency)
    for entry in latency["models"]:
        variant = (entry.get("variant") or entry["name"]).removesuffix("-25hz")
        mine = [r for r in rows if r.model == entry["name"] and r.ok]
        if latency["device"] == "cpu":
            limit = targets.get("cpu_int8_rtf_at_10s", {}).get(variant)
            row = _cell(mine, entry["name"], "onnx-int8", HEADLINE)
            if limit is not None and row is not None:
                results.append(_target(f"{entry['name']} INT8 CPU RTF at 10 s", row.rtf, limit, lower=True))
            ratios = [r for r in mine if r.x_floor and r.seconds == HEADLINE["seconds"] and r.batch == 1]
            if ratios and "cpu_latency_over_floor" in targets:
                best = min(ratios, key=lambda r: r.x_floor)
                results.append(_target(f"{entry['name']} best CPU latency / FLOP floor at 10 s ({best.format}, "
                                       f"threads {best.threads})", best.x_floor, targets["cpu_latency_over_floor"],
                                       lower=True))
        elif "gpu_bf16_graphs_speedup" in targets:
            for batch in sorted({r.batch for r in mine}):
                cell = HEADLINE | {"batch": batch}
                fast, base = (_cell(mine, entry["name"], f, cell) for f in ("cuda-bf16-graphs", "cuda-fp32"))
                if fast and base:
                    results.append(_target(f"{entry['name']} GPU bf16 graphs / eager fp32 throughput, 10 s x{batch}",
                                           fast.throughput / base.throughput, targets["gpu_bf16_graphs_speedup"],
                                           lower=False))
    return results


def _target(name: str, value: float, limit: float, lower: bool) -> dict:
    met = value <= limit if lower else value >= limit
    return {"target": name, "value": value, "limit": limit, "direction": "<=" if lower else ">=", "met": met,
            "missed_by": None if met else (value / limit if lower else limit / value)}


def resolve_headline(latency: dict, wanted: dict = HEADLINE) -> dict:
    """``wanted`` where the grid has it; otherwise the longest input, the smallest batch, the most threads."""
    grid = latency["grid"]
    threads = [t or "all" for t in grid["threads"]]
    return {"seconds": wanted["seconds"] if wanted["seconds"] in grid["seconds"] else max(grid["seconds"]),
            "batch": wanted["batch"] if wanted["batch"] in grid["batches"] else min(grid["batches"]),
            "threads": wanted["threads"] if wanted["threads"] in threads
            else max(threads, key=lambda t: float("inf") if t == "all" else t)}


def build_report(latency: dict, accuracy: dict | None = None, accuracy_specs: dict | None = None,
                 headline: dict | None = None, targets: dict | None = None) -> dict:
    """Join latency rows with accuracy rows; ``accuracy_specs`` maps an accuracy row's spec -> (model, format).

    Latency columns come from the ``headline`` cell (default: 10 s, batch 1, all threads, or the
    nearest the grid has: ``resolve_headline``).

    ``targets``: limits to check (``load_targets()``); None checks none.
    Formats without their own accuracy row (``torch-compiled``: the same weights and graph as
    ``torch-fp32``) take the torch-fp32 score, marked ``score_from``.
    """
    headline = headline or resolve_headline(latency)
    scores = {}
    if accuracy:
        for row in accuracy["models"]:
            key = (accuracy_specs or {}).get(row["spec"])
            if key:
                scores[key] = row
    reference = None
    if accuracy:
        ref_row = next(r for r in accuracy["models"] if r["model"] == accuracy["reference"])
        reference = {"model": ref_row["model"], "spec": ref_row["spec"], "mean": ref_row["mean"]}
    table = []
    for entry in latency["models"]:
        for fmt, info in entry["formats"].items():
            if "skipped" in info:
                continue
            row = _cell(latency_rows(latency, entry["name"]), entry["name"], fmt, headline)
            acc = scores.get((entry["name"], fmt))
            score_from = None
            if acc is None and fmt == "torch-compiled":
                acc, score_from = scores.get((entry["name"], "torch-fp32")), "torch-fp32"
            table.append(ReportRow(
                model=entry["name"], format=fmt, params=entry["params"], untrained=entry["untrained"],
                gflops_per_second=entry["gflops_per_second"], file_bytes=info.get("file_bytes"),
                peak_mem_mb=(info.get("memory") or {}).get("peak_rss_mb"),
                median_ms=row and row.median_ms, p95_ms=row and row.p95_ms, rtf=row and row.rtf,
                x_floor=row and row.x_floor,
                mean_score=acc and acc["mean"], retention=acc and acc.get("retention_mean"),
                tasks=acc and {t: (v or {}).get("score") for t, v in acc["tasks"].items()},
                score_from=score_from,
            ).to_dict())
    return {"kind": "report", "created": latency["created"], "machine": latency["machine"],
            "device": latency["device"], "load_before": latency.get("load_before"),
            "load_after": latency.get("load_after"), "headline_cell": headline, "reference": reference,
            "tasks": list(accuracy["tasks"]) if accuracy else [], "table": table,
            "targets": check_targets(latency, targets or {}), "latency": latency, "accuracy": accuracy}


def headline_markdown(report: dict) -> str:
    """The model x format table (the README's results table)."""
    tasks = report["tasks"]
    head = ["model", "format", "params M", "file MB", "peak mem MB",
            f"latency ms ({report['headline_cell']['seconds']:g} s)", "RTF", "x floor",
            *tasks, "mean", "retention"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in report_rows(report):
        task_cells = [_fmt(None if row.tasks is None else row.tasks.get(t), ".3f") for t in tasks]
        mark = "*" if row.score_from else ""
        name = row.model + (" (untrained)" if row.untrained else "")
        lines.append("| " + " | ".join([
            name, row.format, f"{row.params / 1e6:.1f}", _mb(row.file_bytes),
            _fmt(row.peak_mem_mb, ".0f"), _fmt(row.median_ms, ".1f"), _fmt(row.rtf, ".4f"),
            _fmt(row.x_floor, ".2f"), *task_cells, _fmt(row.mean_score, ".3f") + mark,
            _fmt(row.retention, ".3f") + mark]) + " |")
    return "\n".join(lines) + "\n"


def targets_markdown(targets: list[dict]) -> str:
    lines = ["| target | measured | limit | met |", "|---|---|---|---|"]
    for t in targets:
        verdict = "yes" if t["met"] else f"no: missed by {t['missed_by']:.2f}x"
        lines.append(f"| {t['target']} | {t['value']:.4g} | {t['direction']} {t['limit']:g} | {verdict} |")
    return "\n".join(lines) + "\n"


def report_markdown(report: dict, plot_name: str | None = None) -> str:
    reference = report["reference"]
    lines = [f"# USAD bench report ({report['device']})", "", f"Machine: {machine_line(report['latency'])}", "",
             f"Latency: input {report['headline_cell']['seconds']:g} s, batch {report['headline_cell']['batch']}, "
             f"threads {report['headline_cell']['threads']}, median of interleaved rounds. Scores: probe accuracy "
             f"(task suite, {len(report['tasks'])} tasks), retention = mean score / the reference's"
             + (f" ({reference['model']}, mean {reference['mean']:.3f})." if reference else " (no accuracy run)."),
             "", headline_markdown(report)]
    if any(r.score_from for r in report_rows(report)):
        lines.append("\\* torch-compiled runs the torch-fp32 weights and graph: score of torch-fp32.\n")
    if plot_name:
        lines += [f"![score vs latency]({plot_name})", ""]
    lines += ["## Targets (issue 7)", "", targets_markdown(report["targets"]), latency_markdown(report["latency"])]
    return "\n".join(lines)


def pareto_plot(report: dict, path: Path) -> Path:
    """Mean score vs latency (log), one point per model x format, the Pareto front joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report_rows(report) if r.median_ms is not None]
    scored = [r for r in rows if r.mean_score is not None]
    use = scored or rows
    ys = [r.mean_score if scored else r.gflops_per_second for r in use]
    xs = [r.median_ms for r in use]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for fmt in sorted({r.format for r in use}):
        idx = [i for i, r in enumerate(use) if r.format == fmt]
        ax.scatter([xs[i] for i in idx], [ys[i] for i in idx], label=fmt, s=36)
    for x, y, r in zip(xs, ys, use):
        ax.annotate(r.model, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    front = pareto_front(list(zip(xs, ys)))
    ax.plot([xs[i] for i in front], [ys[i] for i in front], "k--", lw=0.8, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel(f"latency, ms per 10 s clip ({report['machine'].get('gpu') or report['machine']['cpu']})")
    ax.set_ylabel("mean probe score" if scored else "GFLOPs per second of audio (no accuracy run)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_combined_report(report: dict, directory: Path = RESULTS_DIR) -> dict[str, Path]:
    """``<date>_<machine>.json|.md|.png`` under ``directory``: the record, its tables, the Pareto plot."""
    stem = f"{report['created'][:10]}_{report['machine']['slug']}"
    return write_report(directory, stem, report, report_markdown(report, f"{stem}.png"),
                        lambda path: pareto_plot(report, path))


def latest_report(directory: Path = RESULTS_DIR, device: str | None = None) -> Path | None:
    """The newest report JSON in ``directory`` (by its ``created`` time), optionally of one device."""
    found = []
    for path in Path(directory).glob("*.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if record.get("kind") == "report" and (device is None or record.get("device") == device):
            found.append((record["created"], path))
    return max(found)[1] if found else None


def readme_section(report: dict, report_path: str) -> str:
    """The README's results block: machine, load, the model x format table, the targets."""
    machine = report["machine"]
    where = machine.get("gpu") or f"{machine['cpu']} ({machine['cores']} cores)"
    return (f"Measured on {where}, {report['created'][:10]}, load average {report.get('load_before')} before / "
            f"{report.get('load_after')} after (the machine is shared; see the full report for every cell). "
            f"{load_warning(report['latency'])} "
            f"Latency: {report['headline_cell']['seconds']:g} s input, batch {report['headline_cell']['batch']}, "
            f"threads {report['headline_cell']['threads']}, median. Full report: `{report_path}`.\n\n"
            + headline_markdown(report) + "\n" + targets_markdown(report["targets"]))
