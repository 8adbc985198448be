"""Record a corpus build in bench/results/corpus.{md,json}: the command, wall time, hours per source
and domain (real and synthetic apart), bitrate per domain, bytes per payload part, skipped/undecodable
counts and the leak check, read from the built manifests, payload.json and the build's log.

    .venv/bin/python scripts/corpus_report.py --corpus /work/data/corpus-20h --subset /work/data/corpus-2h \
        --payload /work/data/gpu-payload --log /work/data/corpus-20h.log --command "usad data corpus ..."
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from usad.data.shards import read_manifest
from usad.data.splits import check_disjoint
from usad.data.tasks import held_out_tokens

MIB = 2**20


def _wall(log: Path | None) -> str | None:
    """Elapsed wall time from ``/usr/bin/time -v`` output, if the build ran under it."""
    if log is None or not log.is_file():
        return None
    match = re.search(r"Elapsed \(wall clock\) time.*?: (\S+)", log.read_text(errors="replace"))
    return match.group(1) if match else None


def summary(corpus: Path, subset: Path, payload: Path, log: Path | None, command: str) -> dict:
    manifest, small = read_manifest(corpus), read_manifest(subset)
    for m in (manifest, small):  # the leak check, again, on what was written
        check_disjoint(set(m["source_tokens"]), held_out_tokens())
    problems = manifest["problems"]
    parts = json.loads((payload / "payload.json").read_text())["parts"] if (payload / "payload.json").is_file() else []
    return {
        "command": command, "wall_time": _wall(log),
        "hours": manifest["hours"], "real_hours": manifest["real_hours"],
        "synthetic_hours": round(manifest["hours"] - manifest["real_hours"], 4), "clips": manifest["clips"],
        "domains": manifest["domains"], "opus_kbps": manifest["request"]["opus_kbps"],
        "shards": {d: sum(1 for s in manifest["shards"] if s["domain"] == d) for d in manifest["domains"]},
        "corpus_mib": round(sum(s["bytes"] for s in manifest["shards"]) / MIB, 2),
        "largest_shard_mib": round(max(s["bytes"] for s in manifest["shards"]) / MIB, 2),
        "subset": {"hours": small["hours"], "domains": {d: v["hours"] for d, v in small["domains"].items()},
                   "shards": len(small["shards"])},
        "payload_parts": [{"part": p["part"], "mib": round(p["bytes"] / MIB, 2), "files": len(p["files"])}
                          for p in parts],
        "problems": {"count": len(problems),
                     "undecodable_or_failed": sum("unreadable" in p or "Error" in p for p in problems),
                     "no_budget_left": sum("no budget left" in p for p in problems), "all": problems},
        "leak_check": "passed (build_corpus and again here): no source token of any task's val/test rows",
    }


def markdown(s: dict) -> str:
    lines = ["# The distillation corpus (issue 11)", "", f"Command: `{s['command']}`", "",
             f"Wall time: {s['wall_time']} (2-core shared machine, nice 10). "
             f"{s['hours']:.2f} h in {s['clips']} clips, {s['real_hours']:.2f} h real and "
             f"{s['synthetic_hours']:.2f} h synthetic; {s['corpus_mib']:.1f} MiB of shards "
             f"(largest {s['largest_shard_mib']:.1f} MiB). Leak check: {s['leak_check']}.", "",
             "| domain | hours | real | synthetic | Opus kbps | shards |", "|---|---|---|---|---|---|"]
    for d, v in s["domains"].items():
        lines.append(f"| {d} | {v['hours']:.2f} | {v['real_hours']:.2f} | {v['hours'] - v['real_hours']:.2f} | "
                     f"{s['opus_kbps'][d]:g} | {s['shards'][d]} |")
    lines += ["", "| domain | source | hours |", "|---|---|---|"]
    lines += [f"| {d} | {src} | {h:.3f} |" for d, v in s["domains"].items() for src, h in v["sources"].items()]
    lines += ["", f"Scaling subset: {s['subset']['hours']:.2f} h in {s['subset']['shards']} whole shards "
              f"({', '.join(f'{d} {h:.2f} h' for d, h in s['subset']['domains'].items())}).", "",
              "| payload part | MiB | files |", "|---|---|---|"]
    lines += [f"| {p['part']} | {p['mib']:.1f} | {p['files']} |" for p in s["payload_parts"]]
    lines += ["", f"Problems: {s['problems']['count']} ({s['problems']['undecodable_or_failed']} undecodable "
              f"or failed jobs, {s['problems']['no_budget_left']} sources with no budget left); all in corpus.json."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--subset", type=Path, required=True)
    parser.add_argument("--payload", type=Path, required=True)
    parser.add_argument("--log", type=Path)
    parser.add_argument("--command", required=True)
    parser.add_argument("--out", type=Path, default=Path("bench/results/corpus"))
    args = parser.parse_args()
    s = summary(args.corpus, args.subset, args.payload, args.log, args.command)
    args.out.with_suffix(".json").write_text(json.dumps(s, indent=1))
    args.out.with_suffix(".md").write_text(markdown(s))
    print(markdown(s))


if __name__ == "__main__":
    main()
