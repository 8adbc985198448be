"""``usad distill``: one student learns from frozen teachers at once (nanoGPT-style loop).

Run on one device with ``usad distill --config C --out DIR`` or on N GPUs with
``torchrun --nproc_per_node N -m usad.distill --config C --out DIR``. The loop: fetch batch
(prepared on a background thread), teachers forward (no grad, bf16), student + heads forward and
backward (bf16 autocast, DDP all-reduce), clip, AdamW step. Checkpoints are written atomically every
``ckpt_every`` steps and on SIGTERM; ``--resume`` continues at the checkpoint's step, and since every
batch is a function of (seed, step, rank), with the same data as an uninterrupted run.
"""

from __future__ import annotations

import math
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel as DDP

from usad.config import SAMPLE_RATE
from usad.distill.data import Batch, BatchSampler, load_corpus
from usad.distill.logger import TrainLogger
from usad.distill.objective import DistillObjective, probe_teacher
from usad.model import UsadEncoder, create_model
from usad.teachers import load_teacher

CHECKPOINT = "checkpoint.pt"


class Distiller(nn.Module):
    """Student + distillation heads: the module that DDP wraps and AdamW trains."""

    def __init__(self, student: UsadEncoder, objective: DistillObjective):
        super().__init__()
        self.student, self.objective = student, objective

    def forward(self, waveforms: Tensor, lengths: Tensor, targets: dict) -> tuple[Tensor, dict[str, Tensor]]:
        out = self.student(waveforms, lengths)
        return self.objective(out.hidden_states, out.mask, targets)


def setup_distributed() -> tuple[int, int, torch.device]:
    """(rank, world size, device) from torchrun's environment; NCCL on GPU, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    return rank, world, device


def lr_at(step: int, train: dict) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio * lr`` at ``max_steps``."""
    lr, warmup, total = train["lr"], train["warmup_steps"], train["max_steps"]
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    floor = lr * train["min_lr_ratio"]
    return floor + 0.5 * (lr - floor) * (1 + math.cos(math.pi * progress))


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    # nanoGPT: decay matrices and conv kernels, not biases or norm gains.
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class Trainer:
    def __init__(self, config: dict, out_dir: str | Path, resume: bool = False,
                 student: UsadEncoder | None = None):
        self.config, self.out = config, Path(out_dir)
        data, train = config["data"], config["train"]
        self.rank, self.world, self.device = setup_distributed()
        self.is_main = self.rank == 0
        torch.manual_seed(train["seed"])  # identical initial weights on every rank
        self.corpus = load_corpus(data["corpus"], data["min_seconds"], data["workers"])
        self.sampler = BatchSampler(self.corpus, train["batch_size"], data["crop_seconds"], data["domain_weights"],
                                    train["seed"], self.rank, self.world, data["bucket_batches"],
                                    data["pad_multiple_seconds"])
        self.teachers = {t["name"]: load_teacher(t["spec"], self.device, **t.get("options", {}))
                         for t in config["teachers"]}
        use_bf16 = train["precision"] == "bf16"
        self.autocast = (torch.autocast(self.device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext())
        # A given student (e.g. initialised from a larger model by usad compress) replaces the fresh preset.
        if student is None:
            student = create_model(config["student"]["preset"], **config["student"]["overrides"])
        objective = DistillObjective(student.config.dim, student.config.depth, float(student.config.frame_rate),
                                     self._probe_teachers(), config["objective"]["pairs"],
                                     config["objective"]["head_hidden"], config["objective"]["normalize_targets"])
        self.model = Distiller(student, objective).to(self.device)
        if self.device.type == "cuda":
            self.model.to(memory_format=torch.channels_last)  # NHWC subsampler convolutions
        self.optimizer = torch.optim.AdamW(_param_groups(self.model, train["weight_decay"]), lr=train["lr"],
                                           betas=tuple(train["betas"]), fused=self.device.type == "cuda")
        self.step, self.audio_seconds = 0, 0.0
        if resume:
            self.load_checkpoint()
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop shapes: let cuDNN pick its fastest convs
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
            # Static shapes only: one graph per padded batch length (data.pad_multiple_seconds bounds
            # how many). Inductor's automatic dynamic-shape recompile of the student's backward crashed
            # on torch 2.11 (see bench/results/distill_gpu.md).
            if train["compile"]:
                self.model.compile(dynamic=False)  # in place: state_dict keys stay plain
            if train["compile_teachers"]:
                for teacher in self.teachers.values():
                    teacher.compile(dynamic=False)
        self.ddp = DDP(self.model, device_ids=[self.device] if self.device.type == "cuda" else None) \
            if self.world > 1 else self.model
        self.stop_requested = False

    def _probe_teachers(self) -> list:
        """Layer widths and frame rate of each teacher, read off one forward on 2 s of real audio."""
        clip = torch.from_numpy(self.corpus.clips[0][:32_000]).to(self.device)[None]
        lengths = torch.tensor([clip.shape[1]], device=self.device)
        specs = []
        for entry in self.config["teachers"]:
            with torch.no_grad(), self.autocast:
                out = self.teachers[entry["name"]](clip, lengths)
            specs.append(probe_teacher(entry["name"], out, float(entry.get("weight", 1.0))))
        return specs

    def teacher_targets(self, waveforms: Tensor, lengths: Tensor) -> dict:
        with torch.no_grad(), self.autocast:
            return {name: teacher(waveforms, lengths) for name, teacher in self.teachers.items()}

    def train_step(self, batch: Batch, timed: bool = False) -> dict:
        """One optimisation step on this rank's batch; returns losses, lr, grad norm (and timings if ``timed``)."""
        train = self.config["train"]
        lr = lr_at(self.step, train)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        waveforms = batch.waveforms.to(self.device, non_blocking=True)
        lengths = batch.lengths.to(self.device, non_blocking=True)
        t0 = self._clock(timed)
        targets = self.teacher_targets(waveforms, lengths)
        t1 = self._clock(timed)
        with self.autocast:
            loss, per_teacher = self.ddp(waveforms, lengths, targets)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), train["grad_clip"])
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        t2 = self._clock(timed)
        self.step += 1
        self.audio_seconds += float(batch.lengths.sum()) / SAMPLE_RATE * self.world
        stats = {"loss": loss.detach(), "grad_norm": grad_norm, "lr": lr,
                 **{f"loss/{k}": v.detach() for k, v in per_teacher.items()}}
        if timed:
            stats.update(teacher_s=t1 - t0, student_s=t2 - t1)
        return stats

    def _clock(self, sync: bool) -> float:
        if sync and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _reduce(self, stats: dict) -> dict:
        """Average tensor stats over ranks and turn them into floats (log steps only: it syncs)."""
        out = {}
        for key, value in stats.items():
            if isinstance(value, Tensor):
                value = value.detach().float().clone()
                if self.world > 1:
                    dist.all_reduce(value)
                    value /= self.world
                value = value.item()
            out[key] = value
        return out

    def _should_stop(self, started: float) -> bool:
        """SIGTERM or the time budget, agreed by all ranks so they stop at the same step."""
        limit = self.config["train"]["max_minutes"]
        stop = self.stop_requested or (limit is not None and time.time() - started > limit * 60)
        if self.world > 1:
            flag = torch.tensor([float(stop)], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop

    def fit(self) -> Path | None:
        """Train to ``max_steps`` (or until stopped); returns the model dir written at the end, if any."""
        train = self.config["train"]
        previous_handler = signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop_requested", True))
        logger = TrainLogger(self.out, train["max_steps"], self.step, enabled=self.is_main)
        logger.info(self._summary())
        started = time.time()
        with ThreadPoolExecutor(1) as prefetch:
            future = prefetch.submit(self._host_batch, self.step)
            while self.step < train["max_steps"]:
                t0 = time.perf_counter()
                batch = future.result()
                future = prefetch.submit(self._host_batch, self.step + 1)
                data_s = time.perf_counter() - t0
                log_now = (self.step + 1) % train["log_every"] == 0 or self.step + 1 == train["max_steps"]
                stats = self.train_step(batch, timed=log_now)
                logger.advance(self.step, float(batch.lengths.sum()) * self.world / SAMPLE_RATE)
                if log_now:
                    record = self._reduce(stats) | {"step": self.step, "data_s": data_s,
                                                    "samples_seen": self.step * train["batch_size"],
                                                    "audio_hours": self.audio_seconds / 3600,
                                                    "skipped_clips": len(self.corpus.errors)}
                    logger.log(record)
                if self.step % train["ckpt_every"] == 0:
                    self.save_checkpoint()
                if self._should_stop(started):
                    logger.info(f"stopping at step {self.step} ({'SIGTERM' if self.stop_requested else 'time budget'})")
                    break
        self.save_checkpoint()
        logger.close()
        signal.signal(signal.SIGTERM, previous_handler)
        if self.stop_requested:
            return None
        return self.save_model()

    def _host_batch(self, step: int) -> Batch:
        batch = self.sampler.batch(step)
        if self.device.type == "cuda":
            batch.waveforms, batch.lengths = batch.waveforms.pin_memory(), batch.lengths.pin_memory()
        return batch

    def _summary(self) -> str:
        hours = {d: round(s / 3600, 2) for d, s in self.corpus.seconds.items()}
        return (f"student {self.config['student']['preset']} on {self.world} x {self.device.type}; "
                f"teachers {', '.join(self.teachers)}; corpus {len(self.corpus.clips)} clips {hours} h, "
                f"{len(self.corpus.errors)} undecodable clips skipped, {self.corpus.too_short} too short; "
                + (f"resuming at step {self.step}" if self.step else "starting at step 0"))

    def save_checkpoint(self) -> None:
        """Atomic: written to a temporary file, then renamed over the previous checkpoint."""
        if not self.is_main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        state = {"step": self.step, "audio_seconds": self.audio_seconds, "model": self.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "config": self.config}
        tmp = self.out / (CHECKPOINT + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.out / CHECKPOINT)

    def load_checkpoint(self) -> None:
        path = self.out / CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(f"{path}: nothing to resume from")
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.audio_seconds = state["step"], state["audio_seconds"]

    def save_model(self) -> Path | None:
        """The student as a model dir (``out/model``), with the distillation recipe in config.json."""
        if not self.is_main:
            return None
        from usad.modeldir import save

        recipe = {"teachers": self.config["teachers"], "objective": self.config["objective"],
                  "data": self.config["data"], "train": self.config["train"], "steps": self.step,
                  "world_size": self.world, "audio_hours_seen": round(self.audio_seconds / 3600, 3),
                  "corpus_hours": {d: round(s / 3600, 3) for d, s in self.corpus.seconds.items()},
                  "skipped_clips": len(self.corpus.errors)}
        return save(self.model.student, self.out / "model", extra={"distillation": recipe})


def distill(config: dict, out_dir: str | Path, resume: bool = False,
            student: UsadEncoder | None = None) -> Path | None:
    """Run a distillation; returns the model dir (on rank 0). ``student``: initial weights instead of a fresh preset."""
    trainer = Trainer(config, out_dir, resume, student)
    try:
        return trainer.fit()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
