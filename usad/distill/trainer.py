"""``usad distill``: one student learns from frozen teachers at once (nanoGPT-style loop).

Run on one device with ``usad distill --config C --out DIR`` or on N GPUs with
``torchrun --nproc_per_node N -m usad.distill --config C --out DIR``. The loop: next batch from the
streaming DataLoader (its workers decode while the GPU trains), teachers forward (no grad, bf16),
student + heads forward and backward (bf16 autocast, DDP all-reduce), clip, AdamW step. Every
``ckpt_every`` steps, at the end and on SIGTERM it writes the checkpoint and the portable resume
pack (usad.distill.checkpoint) with every data stream's cursor, so ``--resume`` continues with the
very batches an uninterrupted run would have seen. SIGTERM ends with TrainingInterrupted (exit code
75 from the command line), a finished run with its model dir.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel as DDP

from usad.config import SAMPLE_RATE
from usad.data.stream import COUNTERS, Batch, ShardStream, make_loader
from usad.distill.checkpoint import (
    ResumeError,
    ResumeState,
    TrainingInterrupted,
    load_resume,
    save_checkpoint,
    save_pack,
    trim_log,
)
from usad.distill.logger import LOG_FILE, TrainLogger
from usad.distill.objective import DistillObjective, probe_teacher
from usad.distill.recipe import Recipe, RecipeError, TrainRecipe
from usad.model import UsadEncoder, create_model
from usad.modeldir import save
from usad.teachers import load_teacher

STATUS_FILE = "status.json"


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


def lr_at(step: int, train: TrainRecipe) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio * lr`` at ``max_steps``."""
    if step < train.warmup_steps:
        return train.lr * (step + 1) / train.warmup_steps
    progress = min(1.0, (step - train.warmup_steps) / max(1, train.max_steps - train.warmup_steps))
    floor = train.lr * train.min_lr_ratio
    return floor + 0.5 * (train.lr - floor) * (1 + math.cos(math.pi * progress))


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    # nanoGPT: decay matrices and conv kernels, not biases or norm gains.
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class Trainer:
    def __init__(self, recipe: Recipe, out_dir: str | Path, resume: bool = False,
                 student: UsadEncoder | None = None):
        self.recipe, self.out = recipe, Path(out_dir)
        data, train = recipe.data, recipe.train
        self.rank, self.world, self.device = setup_distributed()
        self.is_main = self.rank == 0
        if train.batch_size % self.world:
            raise RecipeError(f"train.batch_size {train.batch_size} is not divisible by {self.world} ranks")
        torch.manual_seed(train.seed)  # identical initial weights on every rank
        resumed = load_resume(self.out, self.device) if resume else None
        self.step = resumed.step if resumed else 0
        self.audio_seconds = resumed.audio_seconds if resumed else 0.0
        self.cursors: dict[int, dict] = dict(resumed.cursors) if resumed else {}
        self.dataset = ShardStream(data, train.batch_size // self.world, train.seed, self.rank, self.world,
                                   self.cursors, first_slot=self.step % max(1, data.workers))
        self.batches = iter(make_loader(self.dataset, pin_memory=self.device.type == "cuda"))
        self.pending: Batch | None = next(self.batches)  # also the probe clip of the teachers
        self.teachers = {t.name: load_teacher(t.spec, self.device, **t.options) for t in recipe.teachers}
        use_bf16 = train.precision == "bf16"
        self.autocast = (torch.autocast(self.device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext())
        # A given student (e.g. initialised from a larger model by usad compress) replaces the fresh preset.
        if student is None:
            student = create_model(recipe.student.preset, **recipe.student.overrides)
        pairs = student.config.depth if recipe.objective.pairs == "all" else recipe.objective.pairs
        objective = DistillObjective(student.config.dim, student.config.depth, float(student.config.frame_rate),
                                     self._probe_teachers(), pairs, recipe.objective.head_hidden,
                                     recipe.objective.normalize_targets)
        self.model = Distiller(student, objective).to(self.device)
        if self.device.type == "cuda":
            self.model.to(memory_format=torch.channels_last)  # NHWC subsampler convolutions
        self.optimizer = torch.optim.AdamW(_param_groups(self.model, train.weight_decay), lr=train.lr,
                                           betas=tuple(train.betas), fused=self.device.type == "cuda")
        self.resumed_from = self._restore(resumed) if resumed else None
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop shapes: let cuDNN pick its fastest convs
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
            # Static shapes only: one graph per padded batch length (data.pad_multiple_seconds bounds
            # how many). Inductor's automatic dynamic-shape recompile of the student's backward crashed
            # on torch 2.11 (see bench/results/distill_gpu.md).
            if train.compile:
                self.model.compile(dynamic=False)  # in place: state_dict keys stay plain
            if train.compile_teachers:
                for teacher in self.teachers.values():
                    teacher.compile(dynamic=False)
        self.ddp = DDP(self.model, device_ids=[self.device] if self.device.type == "cuda" else None) \
            if self.world > 1 else self.model
        self.stop_requested = False
        self.saved_step = self.step if resumed else -1

    def _restore(self, resumed: ResumeState) -> str:
        try:
            self.model.load_state_dict(resumed.model)
            if resumed.optimizer is not None:
                self.optimizer.load_state_dict(resumed.optimizer)
        except (RuntimeError, ValueError, KeyError) as err:
            first = str(err).strip().splitlines()[0]
            raise ResumeError(f"{resumed.source}: does not fit this recipe's student and teachers ({first})") from None
        if resumed.rng is not None:
            torch.set_rng_state(resumed.rng.cpu())
        if self.is_main:
            trim_log(self.out / LOG_FILE, self.step)
        return resumed.source

    def _probe_teachers(self) -> list:
        """Layer widths and frame rate of each teacher, read off one forward on <= 2 s of real audio."""
        waveforms, lengths = self.pending.to(self.device)
        longest = int(lengths.argmax())
        n = min(int(lengths[longest]), 2 * SAMPLE_RATE)
        clip, lengths = waveforms[longest:longest + 1, :n], torch.tensor([n], device=self.device)
        specs = []
        for entry in self.recipe.teachers:
            with torch.no_grad(), self.autocast:
                out = self.teachers[entry.name](clip, lengths)
            specs.append(probe_teacher(entry.name, out, entry.weight))
        return specs

    def next_batch(self) -> Batch:
        batch, self.pending = self.pending or next(self.batches), None
        return batch

    def teacher_targets(self, waveforms: Tensor, lengths: Tensor) -> dict:
        with torch.no_grad(), self.autocast:
            return {name: teacher(waveforms, lengths) for name, teacher in self.teachers.items()}

    def train_step(self, batch: Batch, timed: bool = False) -> dict:
        """One optimisation step on this rank's batch; returns losses, lr, grad norm (and timings if ``timed``)."""
        lr = lr_at(self.step, self.recipe.train)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        waveforms, lengths = batch.to(self.device)
        t0 = self._clock(timed)
        targets = self.teacher_targets(waveforms, lengths)
        t1 = self._clock(timed)
        with self.autocast:
            loss, per_teacher = self.ddp(waveforms, lengths, targets)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.train.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        t2 = self._clock(timed)
        self.step += 1
        self.audio_seconds += float(batch.lengths.sum()) / SAMPLE_RATE * self.world
        self.cursors[batch.cursor["stream"]] = batch.cursor
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

    def skip_counts(self) -> dict[str, int]:
        """Clips and shards the data streams skipped so far, summed over this rank's streams and all ranks."""
        local = torch.tensor([sum(c["counts"][k] for c in self._own_cursors().values()) for k in COUNTERS],
                             dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.all_reduce(local)
        return {k: int(v) for k, v in zip(COUNTERS, local.tolist())}

    def _own_cursors(self) -> dict[int, dict]:
        """Cursors of this rank's streams (a resumed rank also holds the others' from the checkpoint)."""
        slots = max(1, self.recipe.data.workers)
        return {s: c for s, c in self.cursors.items() if s // slots == self.rank}

    def _should_stop(self, started: float) -> bool:
        """SIGTERM or the time budget, agreed by all ranks so they stop at the same step."""
        limit = self.recipe.train.max_minutes
        stop = self.stop_requested or (limit is not None and time.time() - started > limit * 60)
        if self.world > 1:
            flag = torch.tensor([float(stop)], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop

    def fit(self) -> Path | None:
        """Train to ``max_steps`` or the time budget; returns the model dir (rank 0). SIGTERM: TrainingInterrupted."""
        train = self.recipe.train
        previous_handler = signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop_requested", True))
        logger = TrainLogger(self.out, train.max_steps, self.step, enabled=self.is_main)
        logger.info(self._summary())
        self._write_status("running")
        started = time.time()
        while self.step < train.max_steps:
            t0 = time.perf_counter()
            try:
                batch = self.next_batch()
            except RuntimeError:  # workers ended by the same signal (a cgroup-wide SIGTERM): stop at this step
                if not self.stop_requested:
                    raise
                break
            data_s = time.perf_counter() - t0
            log_now = (self.step + 1) % train.log_every == 0 or self.step + 1 == train.max_steps
            stats = self.train_step(batch, timed=log_now)
            logger.advance(self.step, float(batch.lengths.sum()) * self.world / SAMPLE_RATE)
            if log_now:
                logger.log(self._reduce(stats) | {"step": self.step, "data_s": data_s,
                                                  "samples_seen": self.step * train.batch_size,
                                                  "audio_hours": self.audio_seconds / 3600,
                                                  "skipped": self.skip_counts()})
            if self.step % train.ckpt_every == 0:
                self.save_checkpoint()
            if self._should_stop(started):
                logger.info(f"stopping at step {self.step} ({'SIGTERM' if self.stop_requested else 'time budget'})")
                break
        self.save_checkpoint()
        logger.close()
        signal.signal(signal.SIGTERM, previous_handler)
        if self.stop_requested:
            self._write_status("interrupted")
            raise TrainingInterrupted(self.step)
        model_dir = self.save_model()
        self._write_status("finished")
        return model_dir

    def _summary(self) -> str:
        plan = self.dataset.plan
        hours = {d: round(s / 3600, 2) for d, s in plan.seconds.items()}
        start = f"resuming at step {self.step} from {self.resumed_from}" if self.resumed_from else "starting at step 0"
        lines = [f"student {self.recipe.student.preset} on {self.world} x {self.device.type}; teachers "
                 f"{', '.join(self.teachers)}; corpus {len(plan.shards)} shards {hours} h, streamed by "
                 f"{plan.streams} streams ({self.recipe.data.workers} workers per rank)", start]
        if self.dataset.note:
            lines.append(self.dataset.note)
        return "\n".join(lines)

    def _write_status(self, state: str) -> None:
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            record = {"state": state, "step": self.step, "max_steps": self.recipe.train.max_steps,
                      "audio_hours": round(self.audio_seconds / 3600, 3), "time": time.time()}
            (self.out / STATUS_FILE).write_text(json.dumps(record) + "\n")

    def _all_cursors(self) -> dict[int, dict]:
        if self.world == 1:
            return dict(self.cursors)
        gathered: list = [None] * self.world
        dist.all_gather_object(gathered, self._own_cursors())
        return {s: c for part in gathered for s, c in part.items()}

    def save_checkpoint(self) -> None:
        """The full checkpoint and the resume pack, once per step (rank 0 writes; every rank sends its cursors)."""
        if self.saved_step == self.step:
            return
        cursors, record = self._all_cursors(), self.model_record()  # collectives: every rank takes part
        self.saved_step = self.step
        if not self.is_main:
            return
        state = ResumeState(self.step, self.audio_seconds, self.model.state_dict(), self.optimizer.state_dict(),
                            cursors, torch.get_rng_state(), "")
        recipe = self.recipe.to_dict()
        save_checkpoint(self.out, state, recipe)
        save_pack(self.out, state, recipe, record)

    def model_record(self) -> dict:
        """The distillation record of the model dir's config.json."""
        record = {k: v for k, v in self.recipe.to_dict().items() if k != "student"}
        return record | {"steps": self.step, "world_size": self.world,
                         "audio_hours_seen": round(self.audio_seconds / 3600, 3),
                         "corpus_hours": {d: round(s / 3600, 3) for d, s in self.dataset.plan.seconds.items()},
                         "skipped": self.skip_counts()}

    def save_model(self) -> Path | None:
        """The student as a model dir (``out/model``), with the distillation recipe in config.json."""
        record = self.model_record()  # every rank: the skip counts are summed over ranks
        if not self.is_main:
            return None
        return save(self.model.student, self.out / "model", extra={"distillation": record})


def distill(recipe: Recipe, out_dir: str | Path, resume: bool = False,
            student: UsadEncoder | None = None) -> Path | None:
    """Run a distillation; returns the model dir (on rank 0). ``student``: initial weights instead of a fresh preset."""
    trainer = Trainer(recipe, out_dir, resume, student)
    try:
        return trainer.fit()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
