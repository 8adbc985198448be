"""Summarise `usad compress` runs: size, GFLOPs per second of audio, final distillation loss, and
(optionally) probe accuracy on a task subset with `usad bench accuracy`'s code, the full model first.

    python3 scripts/gpu/compress_summary.py --full FULL_DIR --runs RUN_DIR... --out DIR \
        [--tasks TASK_AUDIO_DIR --task T1-digit --task T4-drum]

Each run's model dir is linked as ``<runs' parent>/models/<run name>`` so reports name models by run.
Works where usad is installed and where the repo is only on PYTHONPATH (the GPU machine), where
``usad.bench`` (an install-time alias of bench/) is mapped by hand.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import numpy as np

import usad

if importlib.util.find_spec("usad.bench") is None:  # repo on PYTHONPATH only: map the alias
    sys.modules["usad.bench"] = importlib.import_module("bench")
    usad.bench = sys.modules["usad.bench"]


def run_record(run: Path, teacher_gflops: float) -> dict:
    from usad.model import count_parameters

    model = usad.load(run / "model")
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    config = json.loads((run / "model" / "config.json").read_text())
    gflops = model.gflops_per_second()
    return {"run": run.name, "variant": model.config.name, "frame_rate": model.config.frame_rate,
            "init": config.get("compression", {}).get("init"), "parameters": count_parameters(model),
            "gflops_per_second": round(gflops, 4), "flops_reduction": round(teacher_gflops / gflops, 2),
            "steps": log[-1]["step"], "first_loss": round(log[0]["loss"], 4),
            "final_loss": round(float(np.mean([r["loss"] for r in log[-3:]])), 4),
            "train_minutes": round((log[-1]["time"] - log[0]["time"]) / 60, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", type=Path, required=True)
    parser.add_argument("--runs", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tasks", type=Path, help="built task audio (usad data tasks --out DIR)")
    parser.add_argument("--task", action="append", help="task names (default: all built in --tasks)")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    full = usad.load(args.full)
    full_gflops = full.gflops_per_second()
    summary = {"full": {"dir": str(args.full), "variant": full.config.name,
                        "gflops_per_second": round(full_gflops, 4)},
               "runs": [run_record(run, full_gflops) for run in args.runs if (run / "model").is_dir()]}
    if args.tasks:
        from usad.bench.accuracy import run_accuracy

        links = args.runs[0].parent / "models"
        links.mkdir(exist_ok=True)
        specs = []
        for name, target in [("full", args.full)] + [(run.name, run / "model") for run in args.runs]:
            link = links / name
            if not link.exists():
                link.symlink_to(target.resolve(), target_is_directory=True)
            if (link / "config.json").is_file():
                specs.append(str(link))
        work = args.runs[0].parent / "accuracy"
        result = run_accuracy(specs, work, args.task, audio_dir=args.tasks, seeds=args.seeds, build_missing=False)
        for name in ("accuracy.json", "accuracy.md"):
            (args.out / name).write_text((work / name).read_text())
        summary["accuracy"] = {row["model"]: {"mean": row["mean"], "retention_mean": row["retention_mean"],
                                              **{t: r and r["score"] for t, r in row["tasks"].items()}}
                               for row in result["models"]}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
