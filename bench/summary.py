"""Aggregates of an accuracy run: means per condition and per domain, the best-teacher ceiling, and
retention against the reference model and against that ceiling.

Column names: ``T1-digit`` (clean), ``T1-digit@snr0`` (0 dB). The headline mean averages the clean
and 0 dB columns of every task; a domain mean averages them over the domain's tasks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from usad.data.interference import CONDITIONS
from usad.data.tasks import DOMAINS

HEADLINE = ("clean", "snr0")
# Each teacher kind's own domain (a prefix of the task domains: "speech" covers content and paralinguistic):
# the student's retention is scored against each teacher on that teacher's tasks only.
TEACHER_DOMAINS = {"whisper": "speech", "aisfx": "sound", "atst-frame": "sound", "beats": "sound",
                   "crepe": "music"}


def mean_or_none(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def columns(tasks: list[str], conditions) -> dict[str, tuple[str, str]]:
    """column -> (task, condition), tasks outer, clean first."""
    return {(t if c == "clean" else f"{t}@{c}"): (t, c) for t in tasks for c in ("clean", *conditions)}


def _score(row: dict, col: str) -> float | None:
    t = row["tasks"].get(col)
    return t["score"] if t else None


def aggregates(row: dict, cols: dict[str, tuple[str, str]], domain_of: dict[str, str]) -> dict:
    """Headline mean, mean per condition, and per domain (headline columns) of one row."""
    scores = {col: _score(row, col) for col in cols}
    headline = [col for col, (_, c) in cols.items() if c in HEADLINE]
    out = {"mean": mean_or_none(scores[c] for c in headline)}
    for condition in dict.fromkeys(c for _, c in cols.values()):
        out[f"mean_{condition}"] = mean_or_none(s for col, s in scores.items() if cols[col][1] == condition)
    out["domains"] = {d: mean_or_none(scores[col] for col in headline if domain_of[cols[col][0]] == d)
                      for d in DOMAINS}
    return out


def _ratio(row: dict, other: dict, cols: list[str]) -> float | None:
    """mean(row) / mean(other) over the columns both scored."""
    common = [c for c in cols if _score(row, c) is not None and _score(other, c)]
    if not common:
        return None
    return float(np.mean([_score(row, c) for c in common]) / np.mean([_score(other, c) for c in common]))


def domain_teachers(rows: list[dict]) -> list[tuple[str, dict]]:
    """(domain, teacher row) for every teacher row whose kind has a domain (``TEACHER_DOMAINS``)."""
    return [(TEACHER_DOMAINS[r["spec"].split(":")[1]], r) for r in rows
            if r["spec"].startswith("teacher:") and r["spec"].split(":")[1] in TEACHER_DOMAINS]


def best_teacher(rows: list[dict]) -> dict | None:
    """Per column the best teacher row's result (``from`` names it); None without teacher rows."""
    teachers = [r for r in rows if r["spec"].startswith("teacher:")]
    if not teachers:
        return None
    tasks = {}
    for col in teachers[0]["tasks"]:
        scored = [(t["tasks"][col], t["model"]) for t in teachers if t["tasks"].get(col)]
        if scored:
            result, name = max(scored, key=lambda s: s[0]["score"])
            tasks[col] = {**result, "from": name}
    return {"model": "best teacher", "spec": "best-teacher", "tasks": tasks}


def summarize(rows: list[dict], models: list[str], task_data: dict[str, dict], conditions) -> dict:
    """The result of ``run_accuracy``: rows with aggregates and retentions, the best-teacher row."""
    cols = columns(list(task_data), conditions)
    domain_of = {name: m["domain"] for name, m in task_data.items()}
    headline = [col for col, (_, c) in cols.items() if c in HEADLINE]
    reference = next((r for r, spec in zip(rows, models) if Path(spec).is_dir()), rows[0])
    ceiling = best_teacher(rows)
    for row in [*rows, *([ceiling] if ceiling else [])]:
        row.update(aggregates(row, cols, domain_of))
        row["retention"] = {c: (_score(row, c) / _score(reference, c) if _score(row, c) is not None
                                and _score(reference, c) else None) for c in cols}
        row["retention_mean"] = _ratio(row, reference, headline)
        if ceiling:
            row["vs_best_teacher"] = {
                "mean": _ratio(row, ceiling, headline),
                **{c: _ratio(row, ceiling, [col for col in cols if cols[col][1] == c]) for c in ("clean", *conditions)},
                "domains": {d: _ratio(row, ceiling, [col for col in headline if domain_of[cols[col][0]] == d])
                            for d in DOMAINS}}
        row["vs_domain_teacher"] = {
            f"{domain} vs {teacher['model']}": _ratio(row, teacher, [col for col in headline
                                                                   if domain_of[cols[col][0]].startswith(domain)])
            for domain, teacher in domain_teachers(rows)}
    info = {name: _task_info(m) for name, m in task_data.items()}
    return {"reference": reference["model"], "tasks": info, "columns": cols, "headline": list(HEADLINE),
            "conditions": ["clean", *conditions], "snr_db": {c: CONDITIONS[c] for c in conditions},
            "models": rows, "best_teacher": ceiling}


def _task_info(manifest: dict) -> dict:
    info = {k: manifest.get(k) for k in ("about", "kind", "metric", "domain", "real", "held_out", "classes",
                                         "interference", "frame_hop")}
    info["rows"] = {s: sum(r["split"] == s for r in manifest["rows"]) for s in ("train", "val", "test")}
    info["build_problems"] = len(manifest.get("problems", []))
    return info
