"""Training throughput of a distillation recipe: step time split into data / teachers / student
forward-backward, audio seconds per second, and MFU against a bf16 matmul peak measured in the
same process (so a throttled or shared GPU lowers both sides alike).

    python -m usad.bench.throughput --config configs/usad-small-h100.yaml --steps 30 --json out.json
    torchrun --nproc_per_node 2 -m usad.bench.throughput --config ... --json out2.json   # scaling

FLOPs are counted by ``torch.utils.flop_counter`` on an uncompiled copy of the student + heads
(forward + backward) and of the teachers (forward), once per distinct batch shape.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import tempfile
import time

import torch
import torch.distributed as dist
from torch.utils.flop_counter import FlopCounterMode

from usad.bench.floor import gemm_rate
from usad.config import SAMPLE_RATE
from usad.distill.recipe import Recipe, load_recipe
from usad.distill.trainer import Distiller, Trainer
from usad.model import create_model


def matmul_peak_tflops(device: torch.device) -> float:
    """Measured bf16 (GPU; an 8192^3 product) or fp32 (CPU) dense matmul rate, TFLOP/s: the MFU denominator."""
    if device.type == "cuda":
        rate = gemm_rate([(8192, 8192, 8192)], device="cuda", dtype=torch.bfloat16)
    else:
        rate = gemm_rate()
    return rate["gflops"] / 1e3


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class FlopCounts:
    """Training FLOPs of the student + heads (fwd + bwd) and teachers (fwd) per batch shape."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        config = trainer.recipe.student
        student = create_model(config.preset, **config.overrides).to(trainer.device)
        self.model = Distiller(student, copy.deepcopy(trainer.model.objective))
        self.cache: dict[tuple[int, int], tuple[float, float]] = {}

    def __call__(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[float, float]:
        key = tuple(waveforms.shape)
        if key not in self.cache:
            with FlopCounterMode(display=False) as teacher_count:
                targets = self.trainer.teacher_targets(waveforms, lengths)
            with FlopCounterMode(display=False) as student_count, self.trainer.autocast:
                loss, _ = self.model(waveforms, lengths, targets)
                loss.backward()
            self.model.zero_grad(set_to_none=True)
            self.cache[key] = (student_count.get_total_flops(), teacher_count.get_total_flops())
        return self.cache[key]


def profile_steps(trainer: Trainer, steps: int = 3, top: int = 25) -> str:
    """The GPU kernels that take the time in a few training steps (torch.profiler table)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            trainer.train_step(trainer.next_batch(), timed=True)
    return prof.key_averages().table(sort_by="cuda_time_total", row_limit=top, max_name_column_width=70)


def run(recipe: Recipe, steps: int, warmup: int, profile: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(recipe, tmp)
    device, world = trainer.device, trainer.world
    peak = matmul_peak_tflops(device)
    flops = FlopCounts(trainer)
    rows = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        batch = trainer.next_batch()
        waveforms, lengths = batch.to(device)
        _sync(device)
        t1 = time.perf_counter()
        stats = trainer.train_step(batch, timed=True)
        if i < warmup:  # compilation and allocator warm-up
            continue
        student_flops, teacher_flops = flops(waveforms, lengths)
        # data_s: waiting for the DataLoader, whose workers decode while the GPU trains; > 0 means starved.
        step_s = stats["teacher_s"] + stats["student_s"]
        rows.append({"data_s": t1 - t0, "teacher_s": stats["teacher_s"], "student_s": stats["student_s"],
                     "step_s": step_s, "audio_s": float(batch.lengths.sum()) / SAMPLE_RATE,
                     "student_flops": student_flops, "teacher_flops": teacher_flops})
    if profile:
        rows_profile = profile_steps(trainer)
    med = {k: statistics.median(r[k] for r in rows) for k in ("data_s", "teacher_s", "student_s", "step_s")}
    audio = sum(r["audio_s"] for r in rows)
    total_time = sum(r["step_s"] for r in rows)
    student_time = sum(r["student_s"] for r in rows)
    student_flops = sum(r["student_flops"] for r in rows)
    all_flops = student_flops + sum(r["teacher_flops"] for r in rows)
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "world_size": world, "student": recipe.student.preset, "teachers": [t.spec for t in recipe.teachers],
        "batch_size_global": recipe.train.batch_size, "crop_seconds": recipe.data.crop_seconds,
        "data_workers": recipe.data.workers, "compile": recipe.train.compile, "precision": recipe.train.precision,
        "steps_timed": steps, "median_step_s": med,
        "audio_seconds_per_s_per_rank": audio / total_time,
        "audio_seconds_per_s": audio / total_time * world,
        "matmul_peak_tflops": peak,
        "student_tflops": student_flops / student_time / 1e12,
        "mfu_student": student_flops / student_time / 1e12 / peak,
        "mfu_step_incl_teachers": all_flops / total_time / 1e12 / peak,
        "student_gflops_per_audio_s": student_flops / audio / 1e9,
        "teacher_gflops_per_audio_s": (all_flops - student_flops) / audio / 1e9,
    }
    if profile:
        result["profile"] = rows_profile
    if device.type == "cuda":
        result["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    if dist.is_initialized():
        dist.destroy_process_group()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--json", help="write the result here (rank 0)")
    parser.add_argument("--profile", action="store_true", help="add a torch.profiler kernel table")
    args = parser.parse_args()
    result = run(load_recipe(args.config, args.overrides), args.steps, args.warmup, args.profile)
    if int(os.environ.get("RANK", "0")) == 0:
        table = result.pop("profile", None)
        text = json.dumps(result, indent=2)
        print(text)
        if table:
            print(table)
        if args.json:
            with open(args.json, "w") as f:
                f.write(text + "\n")


if __name__ == "__main__":
    main()
