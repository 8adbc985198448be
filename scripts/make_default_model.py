"""Regenerate the default model shipped in the package (usad/assets/usad-default): of the exported variants, the
fastest variant x format that keeps >= 99 % of its own fp32 task score and fits the package.

    bash scripts/bench_cpu_graphs.sh                     # exports every variant, times them side by side
    .venv/bin/usad data tasks --out data/tasks           # the task suite's audio
    .venv/bin/python scripts/make_default_model.py --candidates runs/cpu-graphs/usad-* \\
        --latency bench/results/<date>_<machine>_latency.json --tasks data/tasks

Formats considered per variant: the fused fp32 graph and every INT8 recipe file that passed its guard, each at
most 8 MB. They are taken fastest first (10 s, batch 1, from the latency run) and task-scored against the
variant's fp32 graph until one keeps ``--min-retention``; that file ships, with the variant's config.json, an
export.json naming it the default, and a README that says what was measured.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

ASSET_DIR = Path(__file__).resolve().parents[1] / "usad" / "assets" / "usad-default"
MAX_BYTES = 8_000_000


def candidate_files(model_dir: Path) -> list[tuple[str, str]]:
    """(bench format, file name) of the fused fp32 graph and each INT8 recipe file that passed its guard."""
    from usad.onnx_conventions import EXPORT_RECORD, recipe_file

    record = json.loads((model_dir / EXPORT_RECORD).read_text())
    guard = record["files"]["model.int8.onnx"]["guard"]
    passed = [r for r in guard["recipes"] if [a for a in guard["attempts"] if a["recipe"] == r][-1]["passed"]]
    files = [("onnx-fp32", "model.onnx")] + [(f"onnx-int8-{r}", recipe_file("model.int8.onnx", r)) for r in passed]
    return [(fmt, name) for fmt, name in files if (model_dir / name).stat().st_size <= MAX_BYTES]


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=Path, nargs="+", required=True,
                        help="model dirs exported with --int8 --keep-candidates (scripts/bench_cpu_graphs.sh)")
    parser.add_argument("--latency", type=Path, required=True, help="usad bench latency JSON of those dirs")
    parser.add_argument("--tasks", type=Path, required=True, help="task audio built by `usad data tasks`")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", default="2")
    parser.add_argument("--min-retention", type=float, default=0.99)
    parser.add_argument("--out", type=Path, default=ASSET_DIR)
    args = parser.parse_args(argv)

    from usad.bench.accuracy import task_scorer
    from usad.bench.latency import latency_rows
    from usad.modeldir import CONFIG_FILE

    rows = latency_rows(json.loads(args.latency.read_text()))
    timed = []
    for model_dir in args.candidates:
        for fmt, name in candidate_files(model_dir):
            ms = next((r.median_ms for r in rows if r.model == model_dir.name and r.format == fmt and r.ok
                       and r.seconds == 10.0 and r.batch == 1 and str(r.threads) == args.threads), None)
            if ms is not None:
                timed.append((ms, model_dir, name))
    if not timed:
        raise SystemExit(f"{args.latency}: no 10 s, batch 1, threads {args.threads} rows for the candidates")
    score = task_scorer(args.tasks, seeds=args.seeds)
    fp32_scores: dict[Path, float] = {}
    for ms, model_dir, name in sorted(timed, key=lambda t: t[0]):
        fp32_scores.setdefault(model_dir, score(str(model_dir / "model.onnx")))
        retention = score(str(model_dir / name)) / fp32_scores[model_dir] if name != "model.onnx" else 1.0
        print(f"{model_dir.name} {name}: {ms:.1f} ms, task retention vs its fp32 {retention:.4f}")
        if retention >= args.min_retention:
            return _write(args.out, model_dir, name, ms, retention, fp32_scores[model_dir], CONFIG_FILE)
    raise SystemExit(f"no candidate keeps {args.min_retention:.0%} of its fp32 task score")


def _write(out: Path, model_dir: Path, name: str, ms: float, retention: float, fp32_score: float,
           config_file: str) -> Path:
    shipped = "model.onnx" if name == "model.onnx" else "model.int8.onnx"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copy(model_dir / name, out / shipped)
    shutil.copy(model_dir / config_file, out / config_file)
    record = json.loads((model_dir / "export.json").read_text())
    files = {shipped: record["files"]["model.onnx" if shipped == "model.onnx" else "model.int8.onnx"]}
    (out / "export.json").write_text(json.dumps({"default": shipped, "files": files, "chosen_from": {
        "model_dir": str(model_dir), "file": name, "latency_ms_10s": ms, "task_retention": retention,
        "fp32_task_score": fp32_score}}, indent=2))
    config = json.loads((model_dir / config_file).read_text())
    (out / "README.md").write_text(
        f"# Default model shipped with usad-edge\n\n{config['variant']} ({model_dir.name}), `{name}` "
        f"({(out / shipped).stat().st_size / 1e6:.1f} MB): the fastest variant x format that keeps >= 99 % of its "
        f"fp32 task score ({retention:.4f}), {ms:.1f} ms for 10 s of audio in the latency run.\n\n"
        "Regenerate: `scripts/make_default_model.py` (its docstring has the commands).\n")
    print(f"wrote {out}: {sorted(p.name for p in out.iterdir())}")
    return out


if __name__ == "__main__":
    main()
