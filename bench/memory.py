"""Peak resident memory of one format, measured in a fresh process.

Formats share a process in the timing loop, so their memory cannot be told apart there; here each
runs alone: ``python -m usad.bench.memory FORMAT MODEL --seconds S --batch B`` loads the model,
runs two calls and prints the process' peak RSS (Linux ``VmHWM``, else ``ru_maxrss``) and its RSS
before the model was loaded. ONNX formats import onnxruntime and numpy only (no torch), as a
deployment would, so their figure is the torch-free runtime's footprint.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

from usad.config import SAMPLE_RATE
from usad.onnx_conventions import FORMAT_FILES


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def peak_rss_mb() -> float:
    """The process' peak resident set size in MiB."""
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale / 1024


def _probe(fmt: str, spec: str, seconds: float, batch: int, threads: int | None) -> dict:
    import numpy as np

    baseline = _status_mb("VmRSS")
    waves = (np.random.default_rng(0).standard_normal((batch, int(seconds * SAMPLE_RATE))) * 0.1).astype(np.float32)
    lengths = np.full(batch, waves.shape[1], dtype=np.int64)
    if fmt in FORMAT_FILES:
        from usad.onnx_conventions import cpu_session  # onnxruntime only, as a deployment

        baseline = _status_mb("VmRSS")
        runner = cpu_session(Path(spec) / FORMAT_FILES[fmt], threads)
        inputs = {"waveforms": waves, "lengths": lengths}
        call = lambda: runner.run(None, inputs)  # noqa: E731
    else:
        import torch

        from usad.bench.runners import BenchModel, make_runner

        if threads:
            torch.set_num_threads(threads)
        baseline = _status_mb("VmRSS")
        runner = make_runner(fmt, BenchModel.resolve(spec), threads)
        inputs = runner.prepare(waves, lengths)
        call = lambda: runner(inputs)  # noqa: E731
    call()
    call()
    return {"peak_rss_mb": round(peak_rss_mb(), 1), "baseline_rss_mb": None if baseline is None else round(baseline, 1),
            "seconds": seconds, "batch": batch, "threads": threads or "all"}


def measure_peak_rss(fmt: str, spec: str | Path, seconds: float, batch: int, threads: int | None,
                     timeout: float = 900) -> dict:
    """Run the probe in a subprocess; returns its figures, or ``{"error": ...}`` when it failed."""
    command = [sys.executable, "-m", "usad.bench.memory", fmt, str(spec), "--seconds", str(seconds),
               "--batch", str(batch)] + (["--threads", str(threads)] if threads else [])
    return run_probe(command, timeout)


def run_probe(command: list[str], timeout: float) -> dict:
    """A probe process printing one JSON line last; its figures, or ``{"error": ...}`` when it failed."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"memory probe timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1][:300]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("format")
    parser.add_argument("model", help="model dir (ONNX formats, torch) or preset name (torch formats)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    print(json.dumps(_probe(args.format, args.model, args.seconds, args.batch, args.threads)))


if __name__ == "__main__":
    main()
