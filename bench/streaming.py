"""``usad bench stream``: a streaming export timed chunk by chunk, and its memory over an hour-long stream.

Latency: every (format, threads) pair gets its own stream of the same audio, fed one chunk's worth
at a time, in rounds of ``ROUND_CHUNKS`` chunks per pair, the pairs in rotating order per round so
drifting load hits all alike (chunk by chunk interleaving would time every step with the other
sessions' weights in the caches). Per pair: compute per chunk (the step call) p50 / p95 / max
without each round's first ``WARMUP_CHUNKS``, real-time factor (compute / audio seconds), and the
latency a frame sees: algorithmic (chunk + look-ahead + 15 ms) plus compute. Memory: a fresh
torch-free process streams an hour of audio through one export and samples its resident set every
minute of audio; ``flat`` asserts that the last sample is within ``FLAT_MB`` of the one at five
minutes (after the allocator has settled).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from usad.config import SAMPLE_RATE
from usad.onnx_conventions import STREAM_FILES
from usad.streaming import FrameStream, algorithmic_latency_ms, open_stream

FLAT_MB = 8.0
MEMORY_SECONDS = 3600.0
SAMPLE_EVERY_S = 60.0
ROUND_CHUNKS = 25  # consecutive chunks of one stream per round: a deployment runs one stream, caches warm
WARMUP_CHUNKS = 2  # dropped at the start of every round


class MemoryNotFlat(AssertionError):
    """Resident memory grew over the stream; the message has the figures."""


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(stream: FrameStream, times: list[tuple[float, float]]) -> None:
    """Record (wall, calling thread CPU) seconds of every step call of ``stream``."""
    run = stream.run

    def timed(feeds):
        wall, cpu = time.perf_counter(), time.thread_time()
        outputs = run(feeds)
        times.append((time.perf_counter() - wall, time.thread_time() - cpu))
        return outputs

    stream.run = timed


def _audio(seconds: float, seed: int = 0) -> np.ndarray:
    """Seeded noise at speech level: a step's time depends on shapes only."""
    return (np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE)) * 0.1).astype(np.float32)


def time_streams(model_dir: Path, formats: Sequence[str], threads: Sequence[int], seconds: float) -> list[dict]:
    """Per (format, threads): per-chunk compute figures over ``seconds`` of audio, interleaved."""
    streams, times = {}, {}
    for fmt in formats:
        for t in threads:
            streams[(fmt, t)] = open_stream(model_dir / STREAM_FILES[fmt], t, layers=(-1,))
            times[(fmt, t)] = []
            _timed(streams[(fmt, t)], times[(fmt, t)])
    first = next(iter(streams.values()))
    block = first.chunk * first.hop
    audio = _audio(seconds)
    keys, kept = list(streams), {key: [] for key in streams}
    starts = range(0, audio.size, block)
    for r, first_chunk in enumerate(range(0, len(starts), ROUND_CHUNKS)):
        for key in keys[r % len(keys):] + keys[:r % len(keys)]:
            before = len(times[key])
            for start in starts[first_chunk:first_chunk + ROUND_CHUNKS]:
                streams[key].push(audio[start:start + block])
            kept[key] += times[key][before + WARMUP_CHUNKS:]  # the others ran meanwhile: warm up again
    rows = []
    for (fmt, t), stream in streams.items():
        stream.close()
        wall, cpu = (np.asarray(column) * 1e3 for column in zip(*kept[(fmt, t)]))
        latency = stream.latency_ms
        rows.append({"format": fmt, "threads": t, "chunk_ms": stream.config.stream_chunk_ms,
                     "lookahead_ms": stream.config.stream_lookahead_ms, "chunks": int(wall.size),
                     "compute_p50_ms": float(np.median(wall)), "compute_p95_ms": float(np.percentile(wall, 95)),
                     "compute_max_ms": float(wall.max()),
                     "cpu_p50_ms": float(np.median(cpu)), "cpu_p95_ms": float(np.percentile(cpu, 95)),
                     "rtf": float(wall.sum() / 1e3 / ((wall.size * stream.chunk * stream.hop) / SAMPLE_RATE)),
                     "algorithmic_latency_ms": latency, "latency_p95_ms": latency + float(np.percentile(wall, 95))})
    return rows


def _consume(out, pooled: np.ndarray | None, frames: int) -> tuple[np.ndarray | None, int]:
    """Use the frames as an application would: a running sum for the mean embedding."""
    if not len(out):
        return pooled, frames
    total = out.hidden.sum(1, dtype=np.float64)
    return (total if pooled is None else pooled + total), frames + len(out)


def stream_memory(onnx_path: str | Path, seconds: float = MEMORY_SECONDS, threads: int | None = 1,
                  on_minute: Callable[[float, float], None] | None = None) -> dict:
    """RSS (MiB) every ``SAMPLE_EVERY_S`` of audio while ``seconds`` of audio stream through (this process)."""
    stream = open_stream(onnx_path, threads, layers=(-1,))
    block = stream.chunk * stream.hop
    samples, pooled, frames = [], None, 0
    started = time.perf_counter()
    for minute in range(int(np.ceil(seconds / SAMPLE_EVERY_S))):
        audio = _audio(min(SAMPLE_EVERY_S, seconds - minute * SAMPLE_EVERY_S), seed=minute)
        for start in range(0, audio.size, block):
            pooled, frames = _consume(stream.push(audio[start:start + block]), pooled, frames)
        samples.append(_rss_mb())
        if on_minute:
            on_minute((minute + 1) * SAMPLE_EVERY_S, samples[-1])
    pooled, frames = _consume(stream.close(), pooled, frames)
    settled = samples[min(4, len(samples) - 1)]
    growth = samples[-1] - settled
    return {"file": str(onnx_path), "seconds": seconds, "frames": frames, "rss_mb": [round(s, 2) for s in samples],
            "rss_growth_after_5_min_mb": round(growth, 2), "flat": bool(growth <= FLAT_MB), "limit_mb": FLAT_MB,
            "wall_s": round(time.perf_counter() - started, 1)}


def measure_memory(onnx_path: Path, seconds: float, threads: int | None, timeout: float = 3600) -> dict:
    """``stream_memory`` in a fresh process (numpy + onnxruntime only, as deployed)."""
    from usad.bench.memory import run_probe

    command = [sys.executable, "-m", "usad.bench.streaming", str(onnx_path), "--seconds", str(seconds),
               "--threads", str(threads or 0)]
    return run_probe(command, timeout)


def run_stream_bench(model_dir: str | Path, formats: Sequence[str] = ("int8", "fp32"), threads: Sequence[int] = (1, 2),
                     seconds: float = 120.0, memory_seconds: float | None = MEMORY_SECONDS,
                     log: Callable[[str], None] = print) -> dict:
    """Latency rows for every available format x threads, and the hour-long memory run of the first format."""
    import datetime as dt

    from usad.bench.harness import load_average, machine_info
    from usad.modeldir import load_config

    model_dir = Path(model_dir)
    formats = [f for f in formats if (model_dir / STREAM_FILES[f]).is_file()]
    if not formats:
        raise FileNotFoundError(f"{model_dir}: no streaming export ({', '.join(STREAM_FILES.values())}); "
                                f"run `usad export {model_dir} --stream --int8`")
    config = load_config(model_dir)
    record = {"kind": "stream", "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine_info("cpu"), "model": str(model_dir), "variant": config.name,
              "chunk_ms": config.stream_chunk_ms, "left_ms": config.stream_left_ms,
              "lookahead_ms": config.stream_lookahead_ms, "algorithmic_latency_ms": algorithmic_latency_ms(config),
              "seconds": seconds, "load_before": load_average()}
    log(f"timing {', '.join(formats)} x threads {list(threads)} over {seconds:g} s of audio, interleaved")
    record["rows"] = time_streams(model_dir, formats, threads, seconds)
    record["load_after"] = load_average()
    if memory_seconds:
        log(f"memory: {memory_seconds:g} s of audio through {STREAM_FILES[formats[0]]} in a fresh process")
        record["memory"] = measure_memory(model_dir / STREAM_FILES[formats[0]], memory_seconds, 1)
    return record


def stream_markdown(record: dict) -> str:
    lines = [f"Streaming {record['variant']} ({record['model']}): chunk {record['chunk_ms']} ms, left context "
             f"{record['left_ms'] / 1000:g} s, look-ahead {record['lookahead_ms']} ms; algorithmic latency "
             f"{record['algorithmic_latency_ms']:.0f} ms. {record['machine']['cpu']} ({record['machine']['cores']} "
             f"cores), load {record['load_before']} before / {record['load_after']} after; "
             f"{record['seconds']:g} s of audio per row, interleaved.", "",
             "| format | threads | chunks | compute p50 ms | compute p95 ms | max ms | CPU p50 ms | CPU p95 ms | RTF "
             "| latency p95 ms |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in record["rows"]:
        lines.append(f"| {r['format']} | {r['threads']} | {r['chunks']} | {r['compute_p50_ms']:.2f} | "
                     f"{r['compute_p95_ms']:.2f} | {r['compute_max_ms']:.1f} | {r['cpu_p50_ms']:.2f} | "
                     f"{r['cpu_p95_ms']:.2f} | {r['rtf']:.4f} | {r['latency_p95_ms']:.0f} |")
    lines += ["", "compute: wall time of the step call; CPU: CPU time of the calling thread in the call (with 1 "
                  "thread all of the step's compute, what a quiet core would need on a loaded machine; with 2, "
                  "the worker thread's share is not in it); latency = algorithmic + compute p95."]
    memory = record.get("memory")
    if memory and "error" not in memory:
        lines += ["", f"Memory over {memory['seconds'] / 60:g} min of audio ({Path(memory['file']).name}, fresh "
                      f"process, 1 thread): RSS {memory['rss_mb'][0]:.1f} MiB after 1 min, "
                      f"{memory['rss_mb'][-1]:.1f} MiB at the end, growth after 5 min "
                      f"{memory['rss_growth_after_5_min_mb']:+.2f} MiB (limit {memory['limit_mb']:g}): "
                      f"{'flat' if memory['flat'] else 'NOT FLAT'}; {memory['frames']} frames in "
                      f"{memory['wall_s']:.0f} s."]
    elif memory:
        lines += ["", f"Memory run failed: {memory['error']}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Resident memory of a streaming export over a long stream.")
    parser.add_argument("onnx")
    parser.add_argument("--seconds", type=float, default=MEMORY_SECONDS)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    print(json.dumps(stream_memory(args.onnx, args.seconds, args.threads or None)))


if __name__ == "__main__":
    main()
