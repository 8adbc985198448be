"""The effect of on-the-fly augmentation (data.augment) at CPU scale: two distillations of one student with
the same recipe, seed and steps, without and with augmentation, then the frozen-encoder probes of the
task suite on both. Writes ``OUT.json`` and ``OUT.md``.

    .venv/bin/python scripts/measure_augment.py --corpus cache/corpus-aug --tasks T1-digit T4-drum \\
        --steps 300 --out bench/results/augment_cpu

CPU scale means a small student and few steps: it says whether augmentation breaks or helps the early fit,
not what it does to a GPU-scale run (scripts/gpu/campaign.sh takes the same SET overrides there).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from usad.bench.accuracy import run_accuracy
from usad.data.sources import SourcePaths
from usad.data.tasks import build_tasks
from usad.distill import distill, load_recipe

AUGMENT = ["data.augment.mix_prob=0.5", "data.augment.gain_prob=0.5", "data.augment.speed_prob=0.3"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--config", default="configs/cpu-smoke.yaml")
    parser.add_argument("--tasks", nargs="+", default=["T1-digit", "T4-drum"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--limit-per-split", type=int, default=20, help="task rows per (split, label)")
    parser.add_argument("--work", type=Path, default=Path("runs/augment"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/augment_cpu"))
    args = parser.parse_args()
    common = [f"data.corpus=[{args.corpus}]", f"train.max_steps={args.steps}", "train.ckpt_every=100000",
              f"train.warmup_steps={max(1, args.steps // 10)}"]
    models = {}
    for name, extra in (("plain", []), ("augmented", AUGMENT)):
        run = args.work / name
        model = run / "model"
        if not (model / "config.json").is_file():
            model = distill(load_recipe(args.config, common + extra), run)
        models[name] = (model, extra)
    tasks_dir = args.work / "tasks"
    build_tasks(tasks_dir, args.tasks, SourcePaths(), regenerate=True, limit_per_split=args.limit_per_split)
    result = run_accuracy([str(m) for m, _ in models.values()], args.work / "accuracy", args.tasks,
                          audio_dir=tasks_dir, seeds=3, build_missing=False)
    losses = {name: [json.loads(line) for line in (model.parent / "train_log.jsonl").read_text().splitlines()][-5:]
              for name, (model, _) in models.items()}
    record = {"config": args.config, "corpus": args.corpus, "steps": args.steps, "augment": AUGMENT,
              "final_loss": {n: sum(r["loss"] for r in rows) / len(rows) for n, rows in losses.items()},
              "accuracy": result}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=1))
    lines = [f"# Augmentation at CPU scale: {args.config}, {args.steps} steps, corpus `{args.corpus}`", "",
             f"Augmented run: `{' '.join(AUGMENT)}`. Loss = mean of the last 5 logged steps (on the audio each run "
             "trained on). Probe accuracy %, mean [95% CI] over 3 probe seeds.", "",
             "| run | final loss | " + " | ".join(args.tasks) + " |", "|---|---|" + "---|" * len(args.tasks)]
    for name, row in zip(models, result["models"]):
        cells = [f"{100 * row['tasks'][t]['score']:.1f} [{100 * row['tasks'][t]['ci_low']:.1f}, "
                 f"{100 * row['tasks'][t]['ci_high']:.1f}]" for t in args.tasks]
        lines.append(f"| {name} | {record['final_loss'][name]:.3f} | " + " | ".join(cells) + " |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
