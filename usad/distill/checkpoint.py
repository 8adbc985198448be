"""What a run leaves to be resumed from: the full checkpoint and the portable resume pack.

``OUT/checkpoint.pt`` (torch, weights_only-loadable): student + heads and AdamW state in fp32, step,
audio seen, every data stream's cursor, torch's RNG. Written atomically every ``ckpt_every`` steps,
at the end and on SIGTERM.

``OUT/resume-pack/`` (safetensors + JSON): student + heads in bf16, sharded into files of at most
15 MiB, and ``resume.json`` (step, audio seen, data cursors, RNG, recipe, the model dir record).
It is small enough to leave a GPU machine that returns at most 64 MiB a call, and ``--resume``
takes it when there is no checkpoint: training continues at its step, on its data cursors, with
fresh AdamW moments (the optimizer state is not in it; the log says so).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from usad.errors import UsadError
from usad.model import create_model
from usad.modeldir import load_weights, save, save_weights

CHECKPOINT = "checkpoint.pt"
PACK_DIR = "resume-pack"
PACK_STATE = "resume.json"
PACK_SHARD_BYTES = 15 * 1024 * 1024


class ResumeError(UsadError, RuntimeError):
    """``--resume`` with nothing to resume from, or a checkpoint that does not fit the recipe."""


class TrainingInterrupted(Exception):
    """SIGTERM: the checkpoint and the resume pack are written; the run is not finished."""

    def __init__(self, step: int):
        super().__init__(f"interrupted at step {step}: checkpoint written, --resume continues")
        self.step = step


@dataclass
class ResumeState:
    step: int
    audio_seconds: float
    model: dict[str, torch.Tensor]
    optimizer: dict | None  # None from a resume pack: fresh moments
    cursors: dict[int, dict]  # data stream id -> cursor
    rng: torch.Tensor | None
    source: str  # where it came from, for the log


def _atomic_torch_save(state: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def save_checkpoint(out: Path, state: ResumeState, recipe: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _atomic_torch_save({"step": state.step, "audio_seconds": state.audio_seconds, "model": state.model,
                        "optimizer": state.optimizer, "cursors": state.cursors, "rng": state.rng,
                        "recipe": recipe}, out / CHECKPOINT)


def save_pack(out: Path, state: ResumeState, recipe: dict, model_record: dict) -> Path:
    """Write ``out/resume-pack`` (replacing the previous one only once the new one is complete)."""
    final, tmp, old = out / PACK_DIR, out / (PACK_DIR + ".tmp"), out / (PACK_DIR + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    weights = {k: v.detach().to(torch.bfloat16) if v.is_floating_point() else v for k, v in state.model.items()}
    save_weights(weights, tmp, shard_bytes=PACK_SHARD_BYTES, metadata={"dtype": "bfloat16", "step": str(state.step)})
    meta = {"format": "usad-resume-pack/1", "step": state.step, "audio_seconds": state.audio_seconds,
            "cursors": {str(k): v for k, v in state.cursors.items()},
            "rng": state.rng.tolist() if state.rng is not None else None, "recipe": recipe, "model": model_record}
    (tmp / PACK_STATE).write_text(json.dumps(meta))
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def read_pack_meta(pack: Path) -> dict:
    try:
        return json.loads((pack / PACK_STATE).read_text())
    except (OSError, ValueError) as err:
        raise ResumeError(f"{pack}: not a resume pack ({err})") from None


def load_resume(out: Path, device: torch.device) -> ResumeState:
    """The full checkpoint in ``out``, else its resume pack; ResumeError when there is neither."""
    path = out / CHECKPOINT
    if path.is_file():
        state = torch.load(path, map_location=device, weights_only=True)
        return ResumeState(state["step"], state["audio_seconds"], state["model"], state["optimizer"],
                           state.get("cursors", {}), state.get("rng"), str(path))
    pack = out / PACK_DIR
    if (pack / PACK_STATE).is_file():
        meta = read_pack_meta(pack)
        model = {k: v.float() if v.is_floating_point() else v for k, v in load_weights(pack).items()}
        rng = torch.tensor(meta["rng"], dtype=torch.uint8) if meta.get("rng") else None
        return ResumeState(meta["step"], meta["audio_seconds"], model, None,
                           {int(k): v for k, v in meta["cursors"].items()}, rng, f"{pack} (fresh AdamW moments)")
    raise ResumeError(f"{out}: nothing to resume from (no {CHECKPOINT} and no {PACK_DIR}/)")


def trim_log(path: Path, step: int) -> int:
    """Drop the records of steps after ``step`` (written after the checkpoint of a killed run); returns how many."""
    if not path.is_file():
        return 0
    lines = path.read_text().splitlines()
    kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)
    return len(lines) - len(kept)


def model_dir_from_pack(pack: Path, out: Path) -> Path:
    """The student of a resume pack as a model dir (what the run would have written at that step)."""
    meta = read_pack_meta(pack)
    student = create_model(meta["recipe"]["student"]["preset"], **meta["recipe"]["student"]["overrides"])
    prefix = "student."
    student.load_state_dict({k[len(prefix):]: v.float() for k, v in load_weights(pack).items() if k.startswith(prefix)})
    return save(student, out, extra={"distillation": meta["model"]})
