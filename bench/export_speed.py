"""Speed and size of the export formats, side by side in one interleaved run.

PyTorch eager fp32 vs ONNX Runtime fp32 vs ONNX Runtime INT8 (guarded QDQ) on clips of one length,
batch 1, same thread count for all; rounds rotate the order so load from other processes hits every
format alike. Writes a markdown table (and JSON next to it).

    .venv/bin/python -m usad.bench.export_speed --preset usad-small --seconds 10 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from usad.config import SAMPLE_RATE


def _timings(runners: dict, rounds: int, warmup: int) -> dict[str, list[float]]:
    for run in runners.values():
        for _ in range(warmup):
            run()
    times = {name: [] for name in runners}
    names = list(runners)
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            runners[name]()
            times[name].append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="usad-small")
    parser.add_argument("--model-dir", type=Path, help="a model dir instead of a fresh preset (weights do not "
                                                       "change speed; calibration still uses real audio)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--calibration", type=Path, nargs="*", help="calibration audio (default ../shared/data)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/export_speed.md"))
    args = parser.parse_args(argv)

    import onnxruntime as ort
    import torch

    from usad.export.onnx_export import export_onnx
    from usad.model import create_model
    from usad.modeldir import load
    from usad.quantize import quantize_guarded

    torch.set_num_threads(args.threads)
    model = load(args.model_dir) if args.model_dir else create_model(args.preset).eval()
    name = args.model_dir.name if args.model_dir else args.preset
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="usad-speed-") as work:
        fp32, int8 = Path(work) / "model.onnx", Path(work) / "model.int8.onnx"
        export_onnx(model, fp32)
        guard = quantize_guarded(fp32, int8, args.calibration, threads=args.threads, log=print)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
        sessions = {p: ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"]) for p in (fp32, int8)}
        samples = int(args.seconds * SAMPLE_RATE)
        wave = (np.random.default_rng(0).standard_normal((1, samples)) * 0.1).astype(np.float32)
        lengths = np.array([samples], dtype=np.int64)
        feed = {"waveforms": wave, "lengths": lengths}
        torch_wave, torch_lengths = torch.from_numpy(wave), torch.from_numpy(lengths)

        def eager():
            with torch.inference_mode():
                model(torch_wave, torch_lengths)

        runners = {"PyTorch eager fp32": eager,
                   "ONNX Runtime fp32": lambda: sessions[fp32].run(None, feed),
                   "ONNX Runtime INT8": lambda: sessions[int8].run(None, feed)}
        times = _timings(runners, args.rounds, args.warmup)
        sizes = {"PyTorch eager fp32": sum(p.numel() * p.element_size() for p in model.parameters()),
                 "ONNX Runtime fp32": fp32.stat().st_size, "ONNX Runtime INT8": int8.stat().st_size}
    load_after = os.getloadavg()
    median = {k: statistics.median(v) for k, v in times.items()}
    p95 = {k: float(np.percentile(v, 95)) for k, v in times.items()}
    result = {
        "command": " ".join(argv if argv is not None else sys.argv[1:]),
        "model": name, "seconds": args.seconds, "threads": args.threads, "rounds": args.rounds,
        "cpu": _cpu_name(), "cores": os.cpu_count(), "load_avg_before": load_before, "load_avg_after": load_after,
        "median_s": median, "p95_s": p95, "size_bytes": sizes,
        "ratios": {"int8_vs_onnx_fp32_speedup": median["ONNX Runtime fp32"] / median["ONNX Runtime INT8"],
                   "int8_vs_eager_fp32_speedup": median["PyTorch eager fp32"] / median["ONNX Runtime INT8"],
                   "int8_size_vs_fp32": sizes["ONNX Runtime INT8"] / sizes["ONNX Runtime fp32"]},
        "int8_guard": {"cosine": guard.attempts[-1].cosine, "excluded": guard.excluded},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(_markdown(result))
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    print(_markdown(result))
    return result


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _markdown(r: dict) -> str:
    rows = ["| format | median ms | p95 ms | RTF | file MB |", "|---|---:|---:|---:|---:|"]
    for name, median in r["median_s"].items():
        rows.append(f"| {name} | {median * 1e3:.1f} | {r['p95_s'][name] * 1e3:.1f} | "
                    f"{median / r['seconds']:.4f} | {r['size_bytes'][name] / 1e6:.1f} |")
    q = r["ratios"]
    return "\n".join([
        f"# Export speed: {r['model']}, {r['seconds']:g} s clips, batch 1, {r['threads']} threads",
        "",
        f"CPU: {r['cpu']} ({r['cores']} cores). {r['rounds']} interleaved rounds after warm-up. "
        f"Load average (1/5/15 min) before {tuple(round(x, 2) for x in r['load_avg_before'])}, "
        f"after {tuple(round(x, 2) for x in r['load_avg_after'])}.",
        "",
        *rows,
        "",
        f"- INT8 vs ONNX fp32: **{q['int8_vs_onnx_fp32_speedup']:.2f}x** faster (target >= 2x)",
        f"- INT8 vs PyTorch eager fp32: **{q['int8_vs_eager_fp32_speedup']:.2f}x** faster (target >= 3x)",
        f"- INT8 file: **{q['int8_size_vs_fp32']:.1%}** of fp32 ONNX (target <= 30%)",
        f"- INT8 guard: held-out embedding cosine {r['int8_guard']['cosine']:.5f}, "
        f"excluded nodes: {r['int8_guard']['excluded'] or 'none'}",
        "",
        f"Command: `.venv/bin/python -m usad.bench.export_speed {r['command']}`",
        "",
    ])


if __name__ == "__main__":
    main()
