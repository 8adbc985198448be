"""The one bench harness: what ran the bench, interleaved timing, result files.

Every timed bench (latency, streaming, decode, training throughput) uses these, so each figure is taken the
same way: warm-up, then rounds that call every contender once in rotating order (A B C, B C A, ...), so load
from other processes hits all of them alike; medians and p95 from those rounds.
"""

from __future__ import annotations

import math
import os
import platform
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from usad.versions import library_versions

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_info(device: str) -> dict:
    """What ran the bench; ``slug`` names result files (e.g. ``amd-epyc-2c``, ``nvidia-h100-80gb-hbm3``)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {"cpu": cpu, "cores": cores, "python": platform.python_version(), "platform": platform.platform(),
            **library_versions()}
    if device == "cuda":
        import torch

        info["gpu"] = torch.cuda.get_device_name(0)
        name = info["gpu"]
    else:
        name = f"{cpu} {cores}c"
    info["slug"] = re.sub(r"[^a-z0-9]+", "-", re.sub(r"\(r\)|\(tm\)|processor|\d+-core", "", name.lower())).strip("-")
    return info


def load_average() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def time_cell(runners: dict[str, Callable], prepared: dict, warmup: int = 2, min_rounds: int = 5,
              max_rounds: int = 30, budget_s: float = 4.0) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Interleaved rounds of ``runners[name](prepared[name])``: per-name call times (s) and per-name errors.

    After ``warmup`` calls each, as many rounds as fit ``budget_s`` of timed calls, within the round limits."""
    errors = {}
    for name, runner in list(runners.items()):
        try:
            for _ in range(warmup):
                runner(prepared[name])
        except Exception as err:  # a format failing at one shape must not end the bench
            errors[name] = f"{type(err).__name__}: {str(err)[:300]}"
    live = [name for name in runners if name not in errors]
    if not live:
        return {}, errors
    probe = {}
    for name in live:
        start = time.perf_counter()
        runners[name](prepared[name])
        probe[name] = time.perf_counter() - start
    rounds = int(np.clip(math.ceil(budget_s / max(sum(probe.values()), 1e-6)), min_rounds, max_rounds))
    times: dict[str, list[float]] = {name: [] for name in live}
    for r in range(rounds):
        for name in live[r % len(live):] + live[:r % len(live)]:
            start = time.perf_counter()
            runners[name](prepared[name])
            times[name].append(time.perf_counter() - start)
    return times, errors


def summarize(times: Sequence[float], audio_seconds: float) -> dict:
    """Median/p95 (ms), real-time factor (median / audio seconds), throughput (audio s per s)."""
    arr = np.asarray(times, dtype=np.float64)
    median = float(np.median(arr))
    return {"median_ms": median * 1e3, "p95_ms": float(np.percentile(arr, 95)) * 1e3, "min_ms": float(arr.min()) * 1e3,
            "rounds": int(arr.size), "rtf": median / audio_seconds, "throughput": audio_seconds / median}


def result_stem(record: dict, kind: str) -> str:
    """``<date>_<machine>_<kind>``: result files are one per day, machine and kind."""
    return f"{record['created'][:10]}_{record['machine']['slug']}_{kind}"



