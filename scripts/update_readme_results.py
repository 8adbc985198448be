"""Regenerate the README's results table from the newest bench report.

    .venv/bin/python scripts/update_readme_results.py [--report bench/results/DATE_MACHINE.json] [--readme README.md]

Replaces the text between ``<!-- bench:start -->`` and ``<!-- bench:end -->`` (added at the end of
the README's results section if absent) with the report's machine, table and targets.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from usad.bench.combined_report import latest_report, readme_section
from usad.bench.harness import RESULTS_DIR

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
ROOT = Path(__file__).resolve().parents[1]


def replace_block(text: str, block: str) -> str:
    """``text`` with the marked block replaced, or a "## Results" section appended holding it."""
    wrapped = f"{START}\n{block.rstrip()}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        return head + wrapped + rest.split(END, 1)[1]
    return text.rstrip() + "\n\n## Results\n\n" + wrapped + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="report JSON (default: the newest under bench/results)")
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
    args.readme.write_text(replace_block(args.readme.read_text(), readme_section(report, str(shown))))
    print(f"{args.readme}: results table from {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
