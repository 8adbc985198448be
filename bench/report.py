"""Accuracy reports: markdown tables (headline and per domain, per task and condition with 95 % CIs,
chosen probes, tasks, time) and a plot of the per-domain means."""

from __future__ import annotations

from pathlib import Path

from usad.data.interference import CONDITION_TITLES
from usad.data.tasks import DOMAINS

PROTOCOL = (
    "Protocol: frozen encoders, every layer. Clip tasks: mean (or mean+std) pooled layer, standardised "
    "logistic regression; layer, pooling and C chosen on the clean validation split. Frame tasks: a linear "
    "softmax probe on one layer (chosen on validation) and a SUPERB-style learned softmax-weighted sum of all "
    "layers; the one with the better validation score is scored. Verification: LDA on training speakers, "
    "cosine scores of within-corpus trials, 1 - EER. Each probe is refit {seeds} times on 90 % subsamples of "
    "the training split and scored on the test split of every condition: the probe is trained on clean clips{noisy}. "
    "Noisy conditions mix real audio of another domain from pools of the clip's own split (never the corpus's) "
    "into val/test clips at 5 and 0 dB SNR. Headline mean: clean and 0 dB columns of every task. Best teacher: "
    "per column the best of the teacher rows. Scores in %: accuracy, 1 - EER, raw pitch accuracy (50 cents), "
    "event F1 (100 ms onset collar); CIs bootstrap test clips."
)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _cell(t: dict | None) -> str:
    return "n/a" if t is None else f"{_pct(t['score'])} [{_pct(t['ci_low'])}, {_pct(t['ci_high'])}]"


def _rows(result: dict) -> list[dict]:
    return [*result["models"], *([result["best_teacher"]] if result.get("best_teacher") else [])]


def _role(row: dict) -> str:
    spec = row["spec"]
    if spec == "fbank" or spec.startswith("random:"):
        return f"{row['model']} (floor)"
    if spec == "best-teacher":
        return "**best teacher** (ceiling)"
    return row["model"]


def headline_table(result: dict) -> list[str]:
    conditions = result["conditions"]
    ceiling = result.get("best_teacher")
    head = ["model", "mean clean+0 dB", *(f"mean {CONDITION_TITLES[c]}" for c in conditions), *DOMAINS,
            "vs best teacher", "retention vs " + result["reference"]]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---|" * (len(head) - 1)]
    for row in _rows(result):
        scored = sum(v is not None for v in row["tasks"].values())
        partial = f" (partial: {scored} of {len(result['columns'])} columns)" if scored < len(result["columns"]) else ""
        cells = [_role(row) + partial, _pct(row["mean"]), *(_pct(row.get(f"mean_{c}")) for c in conditions),
                 *(_pct(row["domains"][d]) for d in DOMAINS),
                 _ratio(row["vs_best_teacher"]["mean"]) if ceiling else "n/a", _ratio(row["retention_mean"])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def retention_table(result: dict) -> list[str]:
    conditions = result["conditions"]
    head = ["model", "overall", *(CONDITION_TITLES[c] for c in conditions), *DOMAINS]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---|" * (len(head) - 1)]
    for row in result["models"]:
        v = row["vs_best_teacher"]
        cells = [_role(row), _ratio(v["mean"]), *(_ratio(v[c]) for c in conditions),
                 *(_ratio(v["domains"][d]) for d in DOMAINS)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def domain_teacher_table(result: dict) -> list[str]:
    keys = list(result["models"][0].get("vs_domain_teacher", {}))
    lines = ["| model | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for row in result["models"]:
        lines.append(f"| {_role(row)} | " + " | ".join(_ratio(row["vs_domain_teacher"][k]) for k in keys) + " |")
    return lines


def task_table(result: dict, condition: str) -> list[str]:
    tasks = list(result["tasks"])
    cols = [t if condition == "clean" else f"{t}@{condition}" for t in tasks]
    lines = ["| model | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
    for row in _rows(result):
        cells = [_cell(row["tasks"].get(c)) for c in cols]
        if row["spec"] == "best-teacher":
            cells = [f"{cell} ({row['tasks'][c]['from']})" if row["tasks"].get(c) else cell
                     for cell, c in zip(cells, cols)]
        lines.append(f"| {_role(row)} | " + " | ".join(cells) + " |")
    return lines


def accuracy_markdown(result: dict) -> str:
    noisy = "; with --train-noisy each noisy condition's probe is trained and chosen on that condition"
    lines = [f"# Probe scores (%), {result['seeds']} seeds; reference: {result['reference']}", "",
             PROTOCOL.format(seeds=result["seeds"], noisy=noisy if result.get("train_noisy") else ""), "",
             "## Headline: means per condition and per domain (clean + 0 dB)", "", *headline_table(result)]
    if result.get("best_teacher"):
        lines += ["", "## Retention against the best teacher (mean score / best-teacher mean)", "",
                  *retention_table(result)]
    if result["models"][0].get("vs_domain_teacher"):
        lines += ["", "## Retention against each domain's teacher on that teacher's own tasks (clean + 0 dB)", "",
                  *domain_teacher_table(result)]
    for condition in result["conditions"]:
        lines += ["", f"## Per task, {CONDITION_TITLES[condition]} (mean [95% CI])", "", *task_table(result, condition)]
    lines += ["", "## Chosen probes (clean; layer, pooling, C = 1 / L2, validation score, chance)", "",
              "| model | task | protocol | layer | pooling | C | val | chance |", "|---|---|---|---|---|---|---|---|"]
    for row in result["models"]:
        for task in result["tasks"]:
            t = row["tasks"].get(task)
            if t:
                lines.append(f"| {row['model']} | {task} | {t.get('protocol', 'best layer')} | {t['layer']} | "
                             f"{t['pooling']} | {t['C']:g} | {_pct(t['val_score'])} | {_pct(t['chance'])} |")
    lines += ["", "## Tasks (rows train/val/test)", ""]
    for task, info in result["tasks"].items():
        rows = info["rows"]
        lines.append(f"- **{task}** ({info['domain']}; {'real' if info['real'] else 'synthetic'} audio; held out: "
                     f"{info['held_out']}; metric {info['metric']}; interference: {', '.join(info['interference'])}):"
                     f" {info['about']}; {rows['train']}/{rows['val']}/{rows['test']} rows, "
                     f"{len(info['classes'])} classes")
    for task, reason in result.get("skipped", {}).items():
        lines.append(f"- **{task}**: skipped: {reason}")
    timing = result.get("timing")
    if timing:
        tasks = list(result["tasks"])
        lines += ["", f"## Time (s, wall, {timing['cpus']} CPUs; load average before {timing['load_before']}, "
                      f"after {timing['load_after']})", "",
                  "| model | total | " + " | ".join(tasks) + " |", "|---|---|" + "---|" * len(tasks)]
        for model, seconds in timing["seconds"].items():
            cells = [str(seconds.get(t, "")) for t in tasks]
            lines.append(f"| {model} | {seconds['total']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _rows(result)
    groups = [*DOMAINS, "overall"]
    width = 0.8 / max(len(rows), 1)
    fig, ax = plt.subplots(figsize=(2.2 * len(groups) + 2, 4.5))
    for k, row in enumerate(rows):
        values = [row["domains"][d] for d in DOMAINS] + [row["mean"]]
        xs = [i + k * width for i, v in enumerate(values) if v is not None]
        ax.bar(xs, [100 * v for v in values if v is not None], width, label=row["model"])
    ax.set_xticks([i + width * (len(rows) - 1) / 2 for i in range(len(groups))], groups)
    ax.set_ylabel("mean score, clean + 0 dB (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
