"""Accuracy reports: a markdown table (scores with 95 % CIs, means, retention) and a bar plot."""

from __future__ import annotations

from pathlib import Path


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def accuracy_markdown(result: dict) -> str:
    tasks = list(result["tasks"])
    real = [t for t in tasks if result["tasks"][t]["real"]]
    lines = [f"# Probe accuracy (%), {result['seeds']} seeds, mean [95% CI]; reference: {result['reference']}", "",
             "| model | " + " | ".join(tasks) + " | mean | mean real | mean synthetic | retention |",
             "|---|" + "---|" * (len(tasks) + 4)]
    for row in result["models"]:
        cells = []
        for task in tasks:
            t = row["tasks"].get(task)
            cells.append("n/a" if t is None else f"{_pct(t['score'])} [{_pct(t['ci_low'])}, {_pct(t['ci_high'])}]")
        retention = "n/a" if row["retention_mean"] is None else f"{row['retention_mean']:.3f}"
        means = " | ".join(_pct(row[k]) for k in ("mean", "mean_real", "mean_synthetic"))
        lines.append(f"| {row['model']} | " + " | ".join(cells) + f" | {means} | {retention} |")
    lines += ["", "Retention per task (score / reference score):", "",
              "| model | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
    for row in result["models"]:
        cells = ["n/a" if row["retention"].get(t) is None else f"{row['retention'][t]:.3f}" for t in tasks]
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    lines += ["", "Chosen probes (layer, pooling, C) and chance (majority class on test):", "",
              "| model | task | layer | pooling | C | val | chance |", "|---|---|---|---|---|---|---|"]
    for row in result["models"]:
        for task in tasks:
            t = row["tasks"].get(task)
            if t:
                lines.append(f"| {row['model']} | {task} | {t['layer']} | {t['pooling']} | {t['C']:g} | "
                             f"{_pct(t['val_score'])} | {_pct(t['chance'])} |")
    lines += ["", "Tasks (rows train/val/test; real audio: " + ", ".join(real) + "):", ""]
    for task, info in result["tasks"].items():
        rows = info["rows"]
        lines.append(f"- **{task}** ({'real' if info['real'] else 'synthetic'}; held out: {info['held_out']}): "
                     f"{info['about']}; {rows['train']}/{rows['val']}/{rows['test']} rows, "
                     f"{len(info['classes'])} classes")
    if "T3-language" in result["tasks"]:
        lines += ["", "T3 caveat: in GCompris, language is mostly confounded with speaker (most languages have "
                      "one credited voice), so T3 also measures speaker identity."]
    return "\n".join(lines) + "\n"


def write_plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(result["tasks"])
    models = result["models"]
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(1.6 * len(tasks) + 2, 4))
    for k, row in enumerate(models):
        xs, ys, errs = [], [], [[], []]
        for i, task in enumerate(tasks):
            t = row["tasks"].get(task)
            if t:
                xs.append(i + k * width)
                ys.append(100 * t["score"])
                errs[0].append(100 * (t["score"] - t["ci_low"]))
                errs[1].append(100 * (t["ci_high"] - t["score"]))
        ax.bar(xs, ys, width, yerr=errs, capsize=2, label=row["model"])
    ax.set_xticks([i + width * (len(models) - 1) / 2 for i in range(len(tasks))], tasks, rotation=20)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
