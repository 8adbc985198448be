"""Pareto report of a model family: mean probe score vs GFLOPs per second of audio (and vs measured
CPU latency when given), with retention against the full model.

    python -m usad.bench.pareto runs/compress/accuracy/accuracy.json --out bench/results/compress \
        [--latency latency.json]

Input: the ``accuracy.json`` of ``usad bench accuracy`` (the full model is its reference row); each row
that is a model dir gets its parameters and GFLOPs per second of audio from the model. ``--latency``:
a JSON mapping model name -> CPU real-time factor (10 s clips), from the latency bench.

Confidence intervals: per task, the bench's bootstrap 95 % CI. For the mean over tasks and for the
retention ratio, standard errors are taken from those CIs (half-width / 1.96), combined as independent
(delta method for the ratio). Full model and variant are scored on the same test items, so their errors
are positively correlated and treating them as independent makes the retention CI wider, not narrower.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from usad.bench.writer import write_report

Z95 = 1.96


def _mean_and_se(tasks: dict, names: list[str]) -> tuple[float, float]:
    scores = [tasks[n]["score"] for n in names]
    ses = [(tasks[n]["ci_high"] - tasks[n]["ci_low"]) / (2 * Z95) for n in names]
    return sum(scores) / len(scores), math.sqrt(sum(s * s for s in ses)) / len(ses)


def model_cost(spec: str | Path) -> dict:
    """Variant, parameters, frame rate and GFLOPs per second of audio of a model dir (empty for other specs)."""
    if not Path(spec).is_dir():
        return {}
    import usad
    from usad.model import count_parameters

    model = usad.load(spec)
    return {"variant": model.config.name, "parameters": count_parameters(model), "frame_rate": model.config.frame_rate,
            "gflops_per_second": round(model.gflops_per_second(), 4)}


def family_table(accuracy: dict, latency: dict[str, float] | None = None) -> dict:
    """Rows with params, GFLOPs/s, frame rate, mean score +- CI, retention +- CI, per-task scores."""
    rows = accuracy["models"]
    reference = next(r for r in rows if r["model"] == accuracy["reference"])
    # Only columns every row scored, so every mean is over the same ones; on a suite with noisy conditions the
    # headline columns (clean and 0 dB), as the accuracy report's mean.
    headline, columns = accuracy.get("headline"), accuracy.get("columns", {})
    names = [n for n in reference["tasks"] if all(r["tasks"].get(n) for r in rows)
             and (not headline or columns[n][1] in headline)]
    ref_mean, ref_se = _mean_and_se(reference["tasks"], names)
    out = []
    for row in rows:
        entry = {"model": row["model"], "spec": row["spec"], **model_cost(row["spec"])}
        mean, se = _mean_and_se(row["tasks"], names)
        ratio = mean / ref_mean
        ratio_se = 0.0 if row is reference else ratio * math.hypot(se / mean, ref_se / ref_mean)
        entry.update(mean=mean, mean_ci=[mean - Z95 * se, mean + Z95 * se], retention=ratio,
                     retention_ci=[ratio - Z95 * ratio_se, ratio + Z95 * ratio_se],
                     tasks={n: row["tasks"][n]["score"] for n in names})
        if latency and row["model"] in latency:
            entry["cpu_rtf"] = latency[row["model"]]
        out.append(entry)
    full_gflops = next((e.get("gflops_per_second") for e in out if e["model"] == reference["model"]), None)
    for entry in out:
        if full_gflops and entry.get("gflops_per_second"):
            entry["flops_reduction"] = round(full_gflops / entry["gflops_per_second"], 2)
    frontier(out, "gflops_per_second")
    return {"reference": reference["model"], "tasks": names, "rows": out}


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points no other point beats on both latency (lower) and score (higher), by latency."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def frontier(rows: list[dict], cost: str) -> None:
    """Mark ``pareto_<cost>`` on rows no other row beats on both ``cost`` (lower) and mean score (higher)."""
    costed = [r for r in rows if r.get(cost) is not None]
    front = set(pareto_front([(r[cost], r["mean"]) for r in costed]))
    for i, row in enumerate(costed):
        row[f"pareto_{cost}"] = i in front


def family_markdown(table: dict) -> str:
    def pct(x: float) -> str:
        return f"{100 * x:.1f}"

    tasks = [t for t in table["tasks"] if "@" not in t]  # clean columns; the mean also covers the noisy ones
    lines = [f"# Model family: mean probe score vs compute (reference: {table['reference']})", "",
             "| model | params (M) | GFLOPs / s audio | x fewer FLOPs | frame rate | mean score [95% CI] | "
             "retention [95% CI] | " + " | ".join(tasks) + " | Pareto |",
             "|---|---|---|---|---|---|---|" + "---|" * len(tasks) + "---|"]
    for r in table["rows"]:
        params = f"{r['parameters'] / 1e6:.2f}" if "parameters" in r else "n/a"
        cells = [pct(r["tasks"][t]) for t in tasks]
        lines.append(
            f"| {r['model']} | {params} | {r.get('gflops_per_second', 'n/a')} | {r.get('flops_reduction', 'n/a')} | "
            f"{r.get('frame_rate', 'n/a')} | {pct(r['mean'])} [{pct(r['mean_ci'][0])}, {pct(r['mean_ci'][1])}] | "
            f"{r['retention']:.3f} [{r['retention_ci'][0]:.3f}, {r['retention_ci'][1]:.3f}] | "
            + " | ".join(cells) + f" | {'yes' if r.get('pareto_gflops_per_second') else ''} |")
    lines += ["", f"Mean over the {len(table['tasks'])} columns every model was scored on (clean and 0 dB where the "
                  "suite has noisy conditions; per-task columns above: clean); CIs from the per-task bootstrap CIs "
                  "(see usad.bench.pareto)."]
    return "\n".join(lines) + "\n"


def family_plot(table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_spec = [("gflops_per_second", "GFLOPs per second of audio")]
    if any("cpu_rtf" in r for r in table["rows"]):
        axes_spec.append(("cpu_rtf", "CPU real-time factor (10 s clips)"))
    fig, axes = plt.subplots(1, len(axes_spec), figsize=(6 * len(axes_spec), 4.5), squeeze=False)
    for ax, (key, label) in zip(axes[0], axes_spec):
        rows = sorted((r for r in table["rows"] if r.get(key)), key=lambda r: r[key])
        for r in rows:
            low, high = r["mean_ci"]
            ax.errorbar(r[key], 100 * r["mean"], yerr=[[100 * (r["mean"] - low)], [100 * (high - r["mean"])]],
                        fmt="o", capsize=3)
            ax.annotate(r["model"], (r[key], 100 * r["mean"]), textcoords="offset points", xytext=(5, 5), fontsize=8)
        front = [r for r in rows if r.get(f"pareto_{key}", True)]
        ax.plot([r[key] for r in front], [100 * r["mean"] for r in front], "--", alpha=0.5)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks([r[key] for r in rows], [f"{r[key]:.3g}" for r in rows], rotation=45, fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel(f"mean probe score over {len(table['tasks'])} task columns (%)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def pareto_report(accuracy_json: str | Path, out: str | Path, latency_json: str | Path | None = None) -> dict:
    """Writes pareto.json, pareto.md and pareto.png in ``out``; returns the table."""
    latency = json.loads(Path(latency_json).read_text()) if latency_json else None
    table = family_table(json.loads(Path(accuracy_json).read_text()), latency)
    if latency:
        frontier(table["rows"], "cpu_rtf")
    write_report(out, "pareto", table, family_markdown(table), lambda path: family_plot(table, path))
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("accuracy", type=Path, help="accuracy.json of usad bench accuracy")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--latency", type=Path, help="JSON: model name -> CPU real-time factor")
    args = parser.parse_args()
    pareto_report(args.accuracy, args.out, args.latency)
    print((args.out / "pareto.md").read_text())
