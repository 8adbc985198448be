"""Regenerate the README's tables from results files: the newest bench report, and the models table from the
accuracy report of the task suite.

    .venv/bin/python scripts/update_readme_results.py [--report bench/results/DATE_MACHINE.json] \
        [--accuracy bench/results/accuracy/accuracy.json] [--readme README.md]

Replaces the text between ``<!-- bench:start -->`` and ``<!-- bench:end -->`` (added at the end of
the README's results section if absent) with the report's machine, table and targets, and the text between
``<!-- models:start -->`` and ``<!-- models:end -->`` with one row per scored encoder: size, cost, suite mean,
retention against the reference and the best teacher, and against each domain's teacher on its own tasks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from usad.bench.combined_report import latest_report, readme_section
from usad.bench.harness import RESULTS_DIR

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
MODELS_START, MODELS_END = "<!-- models:start -->", "<!-- models:end -->"
ROOT = Path(__file__).resolve().parents[1]
ACCURACY = ROOT / "bench" / "results" / "accuracy" / "accuracy.json"


def replace_block(text: str, block: str, start: str = START, end: str = END) -> str:
    """``text`` with the marked block replaced, or a "## Results" section appended holding it."""
    wrapped = f"{start}\n{block.rstrip()}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        return head + wrapped + rest.split(end, 1)[1]
    return text.rstrip() + "\n\n## Results\n\n" + wrapped + "\n"


def _fmt(value: float | None, pattern: str) -> str:
    return "" if value is None else format(value, pattern)


def models_table(result: dict, shown: str) -> str:
    """One row per encoder of an accuracy report (model dirs with their size and cost), then the ceiling."""
    from usad.bench.pareto import model_cost

    rows = result["models"]
    teacher_keys = list(rows[0].get("vs_domain_teacher", {}))
    head = ["encoder", "params", "GFLOPs / s audio", "frame rate", "mean clean+0 dB", f"vs {result['reference']}",
            "vs best teacher", *teacher_keys]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---|" * (len(head) - 1)]
    for row in [*rows, *([result["best_teacher"]] if result.get("best_teacher") else [])]:
        size = cost = rate = ""
        if found := model_cost(ROOT / row["spec"]):
            size, cost = f"{found['parameters'] / 1e6:.1f} M", f"{found['gflops_per_second']:.2f}"
            rate = f"{found['frame_rate']} Hz"
        name = f"`{row['spec']}`" if size else ("**best teacher**" if row["spec"] == "best-teacher" else row["spec"])
        cells = [name, size, cost, rate, _fmt(row["mean"] * 100, ".1f"), _fmt(row.get("retention_mean"), ".3f"),
                 _fmt((row.get("vs_best_teacher") or {}).get("mean"), ".3f"),
                 *(_fmt(row.get("vs_domain_teacher", {}).get(k), ".3f") for k in teacher_keys)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([*lines, "", f"Generated from `{shown}` by `scripts/update_readme_results.py`."])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="report JSON (default: the newest under bench/results)")
    parser.add_argument("--accuracy", type=Path, default=ACCURACY, help="accuracy report JSON of the task suite")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args(argv)
    path = args.report or latest_report(RESULTS_DIR)
    if path is None:
        print(f"no report under {RESULTS_DIR}; run `usad bench all` first", file=sys.stderr)
        return 1
    report = json.loads(Path(path).read_text())
    try:
        shown = Path(path).resolve().relative_to(ROOT)
    except ValueError:
        shown = Path(path)
    text = replace_block(args.readme.read_text(), readme_section(report, str(shown)))
    if args.accuracy.is_file():
        accuracy = args.accuracy.resolve().relative_to(ROOT) if args.accuracy.resolve().is_relative_to(ROOT) \
            else args.accuracy
        text = replace_block(text, models_table(json.loads(args.accuracy.read_text()), str(accuracy)),
                             MODELS_START, MODELS_END)
    args.readme.write_text(text)
    print(f"{args.readme}: results table from {shown}" + (f", models table from {args.accuracy}"
                                                          if args.accuracy.is_file() else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
