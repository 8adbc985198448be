"""Loss curves of distillation runs, per teacher, from their train_log.jsonl (runs locally). Several logs
share the axes (one line style per run, one colour per teacher): the 2 h vs 20 h scaling point.

    .venv/bin/python scripts/gpu/distill_plot.py bench/results/campaign/loss_curves.png \
        small-20h=models/usad-small-distilled/train_log.jsonl small-2h=runs/campaign/small-2h/train_log.jsonl
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLES = ("-", "--", ":", "-.")

if __name__ == "__main__":
    out, runs = sys.argv[1], [arg.split("=", 1) for arg in sys.argv[2:]]
    fig, (ax_loss, ax_lr) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 1]})
    for (name, path), style in zip(runs, STYLES):
        records = [json.loads(line) for line in open(path)]
        steps = [r["step"] for r in records]
        teachers = sorted(k for k in records[0] if k.startswith("loss/"))
        for key, colour in zip(teachers, plt.rcParams["axes.prop_cycle"].by_key()["color"]):
            ax_loss.plot(steps, [r[key] for r in records], style, color=colour, label=f"{name} {key[5:]}")
        ax_loss.plot(steps, [r["loss"] for r in records], style, color="k", lw=1, label=f"{name} total")
        ax_lr.plot(steps, [r["lr"] for r in records], style, color="k", label=name)
        print(f"{name}: {len(records)} points, loss {records[0]['loss']:.3f} -> {records[-1]['loss']:.3f}")
    ax_loss.set(xlabel="step", ylabel="L1 - log-sigmoid(cos), mean over pairs", title="distillation loss per teacher")
    ax_loss.legend(fontsize=7, ncol=len(runs))
    ax_loss.grid(alpha=0.3)
    ax_lr.set(xlabel="step", title="learning rate")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
