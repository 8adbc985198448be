"""Which file a model dir ships as its default: the fastest INT8 recipe that passed the guard, or fp32.

The candidates, the float graph they were quantized from and the model dir's other files (the other graph
form, an earlier INT8) are timed side by side on this machine (the target: export runs where the model runs,
or is re-run there), interleaved through the bench harness so drifting load hits all alike. An INT8 file
becomes the default only when it is at least ``MIN_SPEEDUP`` faster than the fastest float file; a slower or
no faster INT8 is never the default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from usad.config import SAMPLE_RATE
from usad.onnx_conventions import cpu_session, is_int8

MIN_SPEEDUP = 1.05  # below this the difference is within this machine's run-to-run noise
LATENCY_SECONDS = 10.0


@dataclass
class Choice:
    recipe: str | None  # the INT8 recipe written as the INT8 file (fastest passing), None when none passed
    # What the runtime runs from the model dir: "int8" or "fp32" (this export's files) or a baseline's file name
    default: str
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


def choose(median_ms: Mapping[str, float], passed: list[str], baselines: Sequence[str] = (),
           min_speedup: float = MIN_SPEEDUP) -> Choice:
    """The fastest passing recipe (the INT8 file), and the default: the fastest INT8 when it beats the fastest
    float by ``min_speedup``, else the fastest float.

    ``median_ms``: "fp32" (the float graph of this export), each timed recipe and each of ``baselines``: the
    other files of the model dir the runtime could run (file names; ``usad.onnx_conventions.shippable_files``),
    timed in the same run, so a plain export is weighed against a fused file already there and the other way
    round."""
    floats = ["fp32", *(b for b in baselines if not is_int8(b))]
    fastest_float = min(floats, key=median_ms.__getitem__)
    fp32 = median_ms[fastest_float]
    float_name = "fp32" if fastest_float == "fp32" else f"fp32 {fastest_float}"
    recipe = min(passed, key=median_ms.__getitem__) if passed else None
    int8s = [*passed, *(b for b in baselines if is_int8(b))]
    if not int8s:
        return Choice(None, fastest_float, f"no INT8 recipe passed the accuracy guard: {float_name} is the default",
                      dict(median_ms))
    best = min(int8s, key=median_ms.__getitem__)
    speedup = fp32 / median_ms[best]
    if speedup < min_speedup:
        label = f"best passing: '{recipe}'" if best == recipe else f"best: {best}"
        reason = (f"no INT8 recipe beats fp32 by {min_speedup:.2f}x ({label} {median_ms[best]:.1f} ms vs "
                  f"{float_name} {fp32:.1f} ms, {speedup:.2f}x): {float_name} is the default")
        return Choice(recipe, fastest_float, reason, dict(median_ms))
    if best != recipe:
        reason = (f"{best}, already in the model dir, stays the default: {median_ms[best]:.1f} ms, faster than "
                  + (f"this export's fastest recipe '{recipe}' {median_ms[recipe]:.1f} ms and " if recipe else "")
                  + f"{float_name} {fp32:.1f} ms")
        return Choice(recipe, best, reason, dict(median_ms))
    reason = (f"INT8 '{best}' is the fastest recipe that passed the guard: {median_ms[best]:.1f} ms vs {float_name} "
              f"{fp32:.1f} ms ({speedup:.2f}x)")
    return Choice(best, "int8", reason, dict(median_ms))
