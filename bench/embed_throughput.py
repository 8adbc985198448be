"""Embedding at dataset scale, measured: files/s and audio-s/s against worker processes, peak RSS against the
number of files and against the length of one file, and the cost of resume.

    python -m usad.bench.embed_throughput                                   # this machine, default model
    python -m usad.bench.embed_throughput --configs 1x1,2x1,4x1,8x1,16x1,1x16 --sections workers \\
        --model models/usad-small-distilled --prefer fp32 --stem embed_throughput_small

Sections: ``workers`` (W workers x T threads each on ``--clips`` clips of ``--seconds``, interleaved rounds
through the bench harness, every call a whole fresh run: worker start-up included), ``files`` (peak RSS and
time of one process over 1k and 10k short clips), ``resume`` (a rerun over a finished run, and one that
redoes half the shards), ``length`` (peak RSS of ``usad embed`` on one 1 h and one 3 h file).
Clips are cut from FSDD's real recordings when ../shared is there, else generated (tones in noise).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf

from usad.backends import BackendSpec, identity
from usad.bench.harness import RESULTS_DIR, load_average, machine_info, summarize, time_cell
from usad.bench.writer import write_report
from usad.config import SAMPLE_RATE
from usad.dataset import DatasetRun
from usad.dataset.run import STATUS_DIR
from usad.runtime import default_model_dir

FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd" / "recordings"


def make_clips(folder: Path, count: int, seconds: float, seed: int = 0) -> str:
    """``count`` FLAC clips of ``seconds`` at 16 kHz in ``folder``; returns where the audio came from."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    recordings = sorted(FSDD.glob("*.flac")) if FSDD.is_dir() else []
    samples = int(seconds * SAMPLE_RATE)
    for i in range(count):
        if recordings:
            parts, total = [], 0
            while total < samples:  # FSDD is 8 kHz: repeat each sample (the runtime resamples real files anyway)
                audio = np.repeat(sf.read(recordings[rng.integers(len(recordings))], dtype="float32")[0], 2)
                parts.append(audio)
                total += audio.size
            clip = np.concatenate(parts)[:samples]
        else:
            t = np.arange(samples) / SAMPLE_RATE
            clip = (0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t) + 0.05 * rng.standard_normal(samples))
        sf.write(folder / f"clip-{i:06d}.flac", clip.astype(np.float32), SAMPLE_RATE)
    return "FSDD real recordings, concatenated" if recordings else "generated tones in noise"


def bench_workers(spec: BackendSpec, clips: Path, configs: list[tuple[int, int]], seconds: float, count: int,
                  shard_size: int, work: Path, rounds: int, warmup: int = 1) -> list[dict]:
    startup: dict[tuple[int, int], list[float]] = {c: [] for c in configs}

    def runner(config: tuple[int, int]):
        def run(_):
            folder = work / f"w{config[0]}x{config[1]}"
            shutil.rmtree(folder, ignore_errors=True)
            started, first = time.perf_counter(), []

            def progress(files: int, seconds: float) -> None:
                if not first:  # the first clip done: workers started, sessions open, one batch through
                    first.append(time.perf_counter() - started)

            summary = DatasetRun(BackendSpec(spec.model, spec.device, config[1], spec.prefer), [str(clips)], folder,
                                 shard_size=shard_size, workers=config[0]).run(progress)
            assert summary["ok"] == count, summary
            startup[config].append(first[0])
        return run

    names = {f"{w}x{t}": (w, t) for w, t in configs}
    times, errors = time_cell({n: runner(c) for n, c in names.items()}, dict.fromkeys(names), warmup=warmup,
                              min_rounds=rounds, max_rounds=rounds, budget_s=0)
    rows = []
    base = None
    for name, (w, t) in names.items():
        if name in errors:
            rows.append({"workers": w, "threads": t, "error": errors[name]})
            continue
        stats = summarize(times[name], count * seconds)
        files_per_s = count / (stats["median_ms"] / 1e3)
        base = base or files_per_s
        first_s = float(np.median(startup[(w, t)][-len(times[name]):]))
        rows.append({"workers": w, "threads": t, "files_per_s": files_per_s, "audio_s_per_s": stats["throughput"],
                     "median_s": stats["median_ms"] / 1e3, "p95_s": stats["p95_ms"] / 1e3, "rounds": stats["rounds"],
                     "speedup_vs_first": files_per_s / base, "first_clip_s": first_s,
                     "files_per_s_after_first": count / max(stats["median_ms"] / 1e3 - first_s, 1e-9)})
    return rows


PEAK_SCRIPT = textwrap.dedent("""
    import json, sys, time, warnings
    warnings.simplefilter("ignore")
    from usad.backends import BackendSpec, identity
    from usad.dataset import DatasetRun
    spec, inputs, out, shard = json.loads(sys.argv[1])
    started = time.perf_counter()
    summary = DatasetRun(BackendSpec(*spec), inputs, out, shard_size=shard).run()
    hwm = next(int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
    print(json.dumps({"peak_rss_mb": hwm, "wall_s": time.perf_counter() - started, "ok": summary["ok"],
                      "skipped_shards": summary["skipped_shards"]}))
""")


def _run_measured(spec: BackendSpec, inputs: list[str], out: Path, shard_size: int) -> dict:
    args = json.dumps([[spec.model, spec.device, spec.threads, spec.prefer], inputs, str(out), shard_size])
    done = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_files(spec: BackendSpec, work: Path, counts: list[int], seconds: float) -> tuple[list[dict], dict]:
    """Peak RSS and wall time for ``counts`` short clips, then resume costs on the largest run."""
    rows = []
    for count in counts:
        clips = work / f"short-{count}"
        make_clips(clips, count, seconds, seed=count)
        out = work / f"files-{count}"
        rows.append({"files": count, "clip_seconds": seconds, **_run_measured(spec, [str(clips)], out, 1000)})
    largest = rows[-1]
    out, clips = work / f"files-{largest['files']}", [str(work / f"short-{largest['files']}")]
    finished = _run_measured(spec, clips, out, 1000)
    statuses = sorted((out / STATUS_DIR).glob("*.json"))
    for status in statuses[::2]:
        status.unlink()  # as if killed with every other shard unfinished
    half = _run_measured(spec, clips, out, 1000)
    resume = {"files": largest["files"], "full_run_s": largest["wall_s"], "rerun_when_done_s": finished["wall_s"],
              "shards": len(statuses), "redone_shards": len(statuses[::2]), "rerun_redoing_them_s": half["wall_s"],
              "redo_share": len(statuses[::2]) / len(statuses)}
    return rows, resume


LENGTH_SCRIPT = textwrap.dedent("""
    import sys, warnings
    warnings.simplefilter("ignore")
    from usad.cli import app
    try:
        app(sys.argv[1:], prog_name="usad")
    except SystemExit as stop:
        code = stop.code
    hwm = next(int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
    print("PEAK", hwm, code)
""")


def bench_length(model: str, work: Path, hours: list[float], threads: int) -> list[dict]:
    """Peak RSS of ``usad embed`` (the CLI, runtime path) on one long 8 kHz file per length."""
    rows = []
    for length in hours:
        path = work / f"long-{length:g}h.wav"
        with sf.SoundFile(path, "w", 8000, 1, subtype="PCM_16") as f:
            minute = (0.2 * np.sin(np.arange(8000 * 60) * 0.3)).astype(np.float32)
            for _ in range(int(length * 60)):
                f.write(minute)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", LENGTH_SCRIPT, "embed", model, str(path), "--out",
                               str(work / "long.npz"), "--threads", str(threads)], capture_output=True, text=True)
        peak, code = done.stdout.split("PEAK")[-1].split()
        rows.append({"hours": length, "peak_rss_mb": float(peak), "exit": int(code) if code != "None" else 0,
                     "wall_s": time.perf_counter() - started})
        path.unlink()
    return rows


def markdown(record: dict) -> str:
    m = record["machine"]
    lines = [f"# Embedding throughput: {record['model']['name']} ({record['model']['file']})", "",
             f"{m['cpu']} ({m['cores']} cores), {record['created'][:10]}, load average {record['load_before']} "
             f"before / {record['load_after']} after. Audio: {record['audio']}.", ""]
    if record.get("workers"):
        w = record["workers_setup"]
        lines += [f"## Workers: {w['clips']} clips of {w['seconds']:g} s, shards of {w['shard_size']}, "
                  "whole fresh runs (worker start-up included), interleaved rounds", "",
                  "| workers x threads | files/s | audio-s/s | x first row | median s | p95 s | rounds | "
                  "s to first clip (start-up) | files/s after it |", "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['workers']} x {r['threads']} | {r['files_per_s']:.1f} | {r['audio_s_per_s']:.0f} | "
                  f"{r['speedup_vs_first']:.2f} | {r['median_s']:.2f} | {r['p95_s']:.2f} | {r['rounds']} | "
                  f"{r['first_clip_s']:.1f} | {r['files_per_s_after_first']:.1f} |"
                  if "error" not in r else f"| {r['workers']} x {r['threads']} | {r['error']} | | | | | | | |"
                  for r in record["workers"]]
        lines.append("")
    if record.get("files"):
        lines += ["## Peak RSS against the number of files (one process, Parquet output)", "",
                  "| files | clip s | peak RSS MB | wall s |", "|---|---|---|---|"]
        lines += [f"| {r['files']} | {r['clip_seconds']:g} | {r['peak_rss_mb']:.0f} | {r['wall_s']:.1f} |"
                  for r in record["files"]]
        r = record["resume"]
        lines += ["", f"Resume, {r['files']} files in {r['shards']} shards: full run {r['full_run_s']:.1f} s; rerun "
                  f"over the finished folder {r['rerun_when_done_s']:.1f} s; rerun redoing {r['redone_shards']} "
                  f"shards ({r['redo_share']:.0%}) {r['rerun_redoing_them_s']:.1f} s.", ""]
    if record.get("length"):
        lines += ["## Peak RSS against the length of one file (`usad embed`, runtime path)", "",
                  "| hours | peak RSS MB | wall s |", "|---|---|---|"]
        lines += [f"| {r['hours']:g} | {r['peak_rss_mb']:.0f} | {r['wall_s']:.0f} |" for r in record["length"]]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(default_model_dir()))
    parser.add_argument("--prefer", choices=["fp32", "int8"])
    parser.add_argument("--sections", default="workers,files,length")
    parser.add_argument("--configs", default="1x1,2x1,1x2", help="workers x threads, comma separated")
    parser.add_argument("--clips", type=int, default=240)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--shard-size", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed whole runs per config first")
    parser.add_argument("--file-counts", default="1000,10000")
    parser.add_argument("--hours", default="1,3")
    parser.add_argument("--out", default=str(RESULTS_DIR))
    parser.add_argument("--stem", default="embed_throughput")
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    spec = BackendSpec(args.model, threads=1, prefer=args.prefer)
    configs = [tuple(int(x) for x in c.split("x")) for c in args.configs.split(",")]
    model = identity(spec.open())
    record = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine_info("cpu"),
              "model": model, "load_before": load_average(), "command": " ".join(sys.argv)}
    with tempfile.TemporaryDirectory(prefix="usad-embed-bench-") as tmp:
        work = Path(tmp)
        record["audio"] = make_clips(work / "clips", args.clips, args.seconds)
        if "workers" in sections:
            record["workers_setup"] = {"clips": args.clips, "seconds": args.seconds, "shard_size": args.shard_size}
            record["workers"] = bench_workers(spec, work / "clips", configs, args.seconds, args.clips,
                                              args.shard_size, work, args.rounds, args.warmup)
        if "files" in sections:
            counts = [int(c) for c in args.file_counts.split(",")]
            record["files"], record["resume"] = bench_files(spec, work, counts, 0.5)
        if "length" in sections:
            record["length"] = bench_length(args.model, work, [float(h) for h in args.hours.split(",")], 2)
    record["load_after"] = load_average()
    paths = write_report(args.out, args.stem, record, markdown(record))
    print(markdown(record))
    print(f"-> {paths['md']}")


if __name__ == "__main__":
    main()
