"""``usad bench latency``: every model x format x input length x batch x threads, timed side by side.

Per cell (length, batch, threads) all formats run interleaved: after warm-up, each round calls
every format once, the order rotating from round to round (A B C, B C A, ...), so drifting load
hits all formats alike. Reported per format: median and p95 latency, real-time factor (latency /
audio seconds in the batch), throughput (audio seconds per second), the FLOP floor (the model's
FLOPs for the call / the GEMM rate measured in this run at the same thread count) and latency over
floor. At one thread, ONNX Runtime and torch run the whole call on the calling thread, so the rows also
carry its CPU time (``cpu_ms``): the call's work without the waits a loaded machine adds to wall time.
Peak RSS per format comes from a fresh process (``usad.bench.memory``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from usad.bench.floor import encoder_gemm_shapes, gemm_rate, ort_int8_gemm_rate
from usad.bench.harness import load_average, machine_info, summarize, time_cell
from usad.bench.runners import (
    CPU_FORMATS,
    CUDA_FORMATS,
    PEER_FORMATS,
    PRECISION,
    BenchModel,
    FormatUnavailable,
    make_runner,
)
from usad.config import SAMPLE_RATE
from usad.files import atomic_write_json


@dataclass(frozen=True)
class Grid:
    """What to time. ``threads`` None means one thread per core; ``formats`` None: all of the device's."""

    seconds: tuple[float, ...] = (1.0, 5.0, 10.0, 30.0)
    batches: tuple[int, ...] = (1,)
    threads: tuple[int | None, ...] = (None,)
    formats: tuple[str, ...] | None = None
    warmup: int = 2
    min_rounds: int = 5
    max_rounds: int = 30
    cell_budget_s: float = 4.0  # timed seconds per cell, all formats together, within the round limits
    memory: bool = True
    peer: str | None = None  # CTranslate2 Whisper dir (scripts/convert_whisper_ct2.py): peer rows in every cell

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LatencyRow:
    """One timed cell: a model's format at one (threads, batch, input length), or why it failed."""

    model: str
    format: str
    precision: str
    threads: int | str  # "all": one per core
    batch: int
    seconds: float  # input length per clip
    gflop: float | None  # FLOPs of the call (None for a peer, whose graph we do not count)
    median_ms: float | None = None
    p95_ms: float | None = None
    min_ms: float | None = None
    rounds: int | None = None
    rtf: float | None = None  # median / audio seconds in the batch
    throughput: float | None = None  # audio seconds per second
    floor_ms: float | None = None  # FLOPs / the GEMM rate measured in the same run
    x_floor: float | None = None
    error: str | None = None
    cpu_ms: float | None = None  # median CPU time of the calling thread (threads 1, formats run in-thread)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LatencyRow:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"latency row: unknown keys {unknown}")
        return cls(**data)


def latency_rows(record: dict, model: str | None = None) -> list[LatencyRow]:
    """The rows of a latency record (JSON), typed; only ``model``'s when given."""
    rows = [LatencyRow.from_dict(r) for r in record["rows"]]
    return [r for r in rows if model is None or r.model == model]


QUICK = Grid(seconds=(1.0, 10.0), formats=("torch-fp32", "onnx-fp32", "onnx-int8"), warmup=1, min_rounds=3,
             max_rounds=8, cell_budget_s=1.0, memory=False)
FULL = Grid(batches=(1, 8), threads=(1, None))


class ThreadCpu:
    """A runner that also records the calling thread's CPU time per call."""

    def __init__(self, runner: Callable):
        self.runner, self.cpu = runner, []

    def __call__(self, inputs) -> None:
        start = time.thread_time()
        self.runner(inputs)
        self.cpu.append(time.thread_time() - start)


def _inputs(seconds: float, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded noise at speech level: latency does not depend on content, only on shape."""
    samples = int(round(seconds * SAMPLE_RATE))
    waves = (np.random.default_rng(0).standard_normal((batch, samples)) * 0.1).astype(np.float32)
    return waves, np.full(batch, samples, dtype=np.int64)


def measure_floors(models: Sequence[BenchModel], threads: Sequence[int | None], device: str) -> dict:
    """GEMM rates per thread count: fp32 (and bf16 on CUDA) torch, int8 ONNX Runtime on CPU."""
    shapes = sorted({s for m in models for s in encoder_gemm_shapes(m.model.config.dim)})
    if device == "cuda":
        shapes.append((8192, 8192, 8192))  # a GPU needs a large GEMM to reach its peak
    floors = {}
    for t in threads:
        key = str(t or "all")
        if device == "cuda":
            floors[key] = {"fp32": gemm_rate(shapes, device="cuda"),
                           "bf16": gemm_rate(shapes, device="cuda", dtype=torch.bfloat16)}
        else:
            floors[key] = {"fp32": gemm_rate(shapes, threads=t), "int8": ort_int8_gemm_rate(shapes, threads=t)}
    return floors


def _floor_ms(flops: float, floors: dict, precision: str) -> float | None:
    rate = floors.get(precision) or floors.get("fp32")
    if rate is None:
        return None
    per_second = rate.get("gflops") or rate.get("gops")
    return flops / (per_second * 1e9) * 1e3


def default_formats(device: str) -> tuple[str, ...]:
    return CUDA_FORMATS if device == "cuda" else CPU_FORMATS


def run_latency(specs: Sequence[str | Path], grid: Grid = Grid(), device: str | None = None,
                log: Callable[[str], None] = print) -> dict:
    """Time every model of ``specs`` (model dirs or preset names) over ``grid``; returns the JSON record."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    formats = grid.formats or default_formats(device)
    if grid.peer and not set(formats) & set(PEER_FORMATS):
        formats = (*formats, *PEER_FORMATS)
    started, load_before = dt.datetime.now(dt.timezone.utc), load_average()
    models = [BenchModel.resolve(spec) for spec in specs]
    log(f"measuring GEMM rates for the floor ({device}, threads {[t or 'all' for t in grid.threads]})")
    floors = measure_floors(models, grid.threads, device)
    record = {"kind": "latency", "created": started.isoformat(timespec="seconds"), "device": device,
              "machine": machine_info(device), "grid": grid.to_dict() | {"formats": list(formats)},
              "load_before": load_before, "floors": floors, "models": [], "rows": []}
    for spec, bench_model in zip(specs, models):
        record["models"].append(_bench_model(str(spec), bench_model, formats, grid, device, floors,
                                             record["rows"], log))
    record["load_after"] = load_average()
    record["wall_s"] = round((dt.datetime.now(dt.timezone.utc) - started).total_seconds(), 1)
    return record


def _bench_model(spec: str, bench_model: BenchModel, formats: Sequence[str], grid: Grid, device: str, floors: dict,
                 rows: list, log: Callable[[str], None]) -> dict:
    from usad.model import count_parameters

    model = bench_model.model
    entry = {"name": bench_model.name, "spec": spec, "untrained": bench_model.untrained,
             "params": count_parameters(model), "gflops_per_second": model.gflops_per_second(),
             "variant": bench_model.meta.get("variant"), "formats": {}}
    flops = {s: model.flops(s) for s in grid.seconds}
    previous_threads = torch.get_num_threads()
    for threads in grid.threads:
        torch.set_num_threads(threads or previous_threads)
        torch._dynamo.reset()  # compiled CPU kernels bake in the thread count
        runners = {}
        for fmt in formats:
            try:
                runners[fmt] = make_runner(fmt, bench_model, threads, grid.peer)
            except FormatUnavailable as err:
                entry["formats"].setdefault(fmt, {})["skipped"] = str(err)
                log(f"  {bench_model.name} {fmt}: skipped ({err})")
        for batch in grid.batches:
            for seconds in grid.seconds:
                waves, lengths = _inputs(seconds, batch)
                prepared = {name: runner.prepare(waves, lengths) for name, runner in runners.items()}
                in_thread = {f: ThreadCpu(r) for f, r in runners.items() if threads == 1 and f not in PEER_FORMATS}
                times, errors = time_cell(runners | in_thread, prepared, grid.warmup, grid.min_rounds,
                                          grid.max_rounds, grid.cell_budget_s)
                audio = seconds * batch
                for fmt in runners:
                    peer = fmt in PEER_FORMATS
                    cell = dict(model=bench_model.name, format=fmt, precision=PRECISION[fmt],
                                threads=threads or "all", batch=batch, seconds=seconds,
                                gflop=None if peer else flops[seconds] * batch / 1e9)
                    if fmt in errors:
                        rows.append(LatencyRow(**cell, error=errors[fmt]).to_dict())
                        log(f"  {bench_model.name} {fmt} {seconds:g} s x{batch}: failed ({errors[fmt]})")
                        continue
                    stats = summarize(times[fmt], audio)
                    floor = None if peer else _floor_ms(flops[seconds] * batch, floors[str(threads or "all")],
                                                        PRECISION[fmt])
                    cpu = in_thread[fmt].cpu[-len(times[fmt]):] if fmt in in_thread else None
                    rows.append(LatencyRow(**cell, **stats, cpu_ms=float(np.median(cpu)) * 1e3 if cpu else None,
                                           floor_ms=floor,
                                           x_floor=stats["median_ms"] / floor if floor else None).to_dict())
                log(f"  {bench_model.name} {seconds:g} s x{batch} threads {threads or 'all'}: "
                    + ", ".join(f"{f} {summarize(t, audio)['median_ms']:.1f} ms" for f, t in times.items()))
        del runners
    torch.set_num_threads(previous_threads)
    for fmt in formats:
        info = entry["formats"].setdefault(fmt, {})
        info["file_bytes"] = bench_model.file_bytes(fmt)
        if grid.memory and "skipped" not in info and fmt not in PEER_FORMATS:
            info["memory"] = _memory(fmt, bench_model, spec, grid, device)
    return entry


def _memory(fmt: str, bench_model: BenchModel, spec: str, grid: Grid, device: str) -> dict:
    """Peak RSS (CPU formats, fresh process) or peak CUDA allocation (GPU formats, this process)."""
    seconds, batch = max(grid.seconds), max(grid.batches)
    if device == "cuda" and fmt in CUDA_FORMATS:
        runner = make_runner(fmt, bench_model, None)
        inputs = runner.prepare(*_inputs(seconds, batch))
        runner(inputs)
        torch.cuda.reset_peak_memory_stats()
        runner(inputs)
        return {"peak_cuda_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1), "seconds": seconds,
                "batch": batch, "how": "torch.cuda.max_memory_allocated over one call"}
    from usad.bench.memory import measure_peak_rss

    target = str(bench_model.directory) if bench_model.directory is not None else spec
    return measure_peak_rss(fmt, target, seconds, batch, None) | {"how": "VmHWM of a fresh process, two calls"}


def with_overrides(grid: Grid, **changes) -> Grid:
    """``grid`` with the given fields replaced (None values ignored)."""
    return replace(grid, **{k: v for k, v in changes.items() if v is not None})


def write_model_bench(record: dict) -> list[Path]:
    """Each model dir's ``bench.json``: the latest latency rows of that model, with the machine."""
    written = []
    for entry in record["models"]:
        directory = Path(entry["spec"])
        if directory.is_dir():
            rows = [r for r in record["rows"] if r["model"] == entry["name"]]
            written.append(atomic_write_json(directory / "bench.json", {
                "created": record["created"], "machine": record["machine"], "model": entry, "rows": rows}))
    return written

