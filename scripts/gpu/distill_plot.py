"""Loss curves of a distillation run, per teacher, from its train_log.jsonl (runs locally).

    .venv/bin/python scripts/gpu/distill_plot.py models/usad-small-distilled/train_log.jsonl \
        models/usad-small-distilled/loss_curves.png
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

if __name__ == "__main__":
    records = [json.loads(line) for line in open(sys.argv[1])]
    steps = [r["step"] for r in records]
    fig, (ax_loss, ax_lr) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 1]})
    for key in sorted(k for k in records[0] if k.startswith("loss/")):
        ax_loss.plot(steps, [r[key] for r in records], label=key[5:])
    ax_loss.plot(steps, [r["loss"] for r in records], "k--", lw=1, label="total (weighted)")
    ax_loss.set(xlabel="step", ylabel="L1 - log-sigmoid(cos), mean over pairs",
                title="distillation loss per teacher")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    ax_lr.plot(steps, [r["lr"] for r in records])
    ax_lr.set(xlabel="step", title="learning rate")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=120)
    print(f"{sys.argv[2]}: {len(records)} points, loss {records[0]['loss']:.3f} -> {records[-1]['loss']:.3f}")
