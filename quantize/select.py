"""Which file a model dir ships as its default: the fastest INT8 recipe that passed the guard, or fp32.

The candidates and the float graph are timed side by side on this machine (the target: export runs where
the model runs, or is re-run there), interleaved through the bench harness so drifting load hits all alike.
An INT8 file becomes the default only when it is at least ``MIN_SPEEDUP`` faster than fp32; a slower or
no faster INT8 is never the default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from usad.config import SAMPLE_RATE
from usad.onnx_conventions import cpu_session

MIN_SPEEDUP = 1.05  # below this the difference is within this machine's run-to-run noise
LATENCY_SECONDS = 10.0


@dataclass
class Choice:
    recipe: str | None  # the INT8 recipe written as the INT8 file (fastest passing), None when none passed
    default: str  # "int8" or "fp32": what the runtime runs from the model dir
    reason: str
    median_ms: dict[str, float] = field(default_factory=dict)  # "fp32" and each timed recipe
    timing: dict = field(default_factory=dict)  # clip length, threads, rounds

    def to_dict(self) -> dict:
        return asdict(self)


def time_models(paths: Mapping[str, str | Path], audio: np.ndarray, time_cell: Callable,
                seconds: float = LATENCY_SECONDS, threads: int | None = None,
                budget_s: float = 6.0) -> tuple[dict[str, float], dict]:
    """Median latency (ms) of each ONNX file on one ``seconds`` clip of ``audio``, batch 1, interleaved rounds.

    ``time_cell``: the bench harness' interleaved timer (``usad.bench.harness.time_cell``), handed in by the
    caller so quantization does not import the bench that benches it."""
    samples = int(round(seconds * SAMPLE_RATE))
    feed = {"waveforms": np.resize(audio, samples).astype(np.float32)[None],
            "lengths": np.array([samples], dtype=np.int64)}
    sessions = {name: cpu_session(path, threads) for name, path in paths.items()}
    runners = {name: (lambda inputs, s=session: s.run(None, inputs)) for name, session in sessions.items()}
    times, errors = time_cell(runners, {name: feed for name in runners}, warmup=1, min_rounds=5, max_rounds=15,
                              budget_s=budget_s)
    if errors:
        raise RuntimeError(f"timing failed: {errors}")
    medians = {name: float(np.median(t)) * 1e3 for name, t in times.items()}
    return medians, {"seconds": seconds, "batch": 1, "threads": threads or "all",
                     "rounds": len(next(iter(times.values())))}


def choose(median_ms: Mapping[str, float], passed: list[str], min_speedup: float = MIN_SPEEDUP) -> Choice:
    """The fastest passing recipe, and whether it beats fp32 (``median_ms["fp32"]``) by ``min_speedup``."""
    fp32 = median_ms["fp32"]
    if not passed:
        return Choice(None, "fp32", "no INT8 recipe passed the accuracy guard", dict(median_ms))
    best = min(passed, key=lambda r: median_ms[r])
    speedup = fp32 / median_ms[best]
    if speedup >= min_speedup:
        reason = (f"INT8 '{best}' is the fastest recipe that passed the guard: {median_ms[best]:.1f} ms vs fp32 "
                  f"{fp32:.1f} ms ({speedup:.2f}x)")
        return Choice(best, "int8", reason, dict(median_ms))
    reason = (f"no INT8 recipe beats fp32 by {min_speedup:.2f}x (best passing: '{best}' {median_ms[best]:.1f} ms vs "
              f"fp32 {fp32:.1f} ms, {speedup:.2f}x): fp32 is the default")
    return Choice(best, "fp32", reason, dict(median_ms))
