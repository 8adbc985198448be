"""``usad teachers convert KIND CKPT --out DIR``: an official teacher checkpoint, converted once into
``DIR/model.safetensors`` + ``DIR/teacher.json`` so that training never unpickles anything.

- ``atst-frame``: the Lightning checkpoint of Audio-WestlakeU/audiossl (``atstframe_base.ckpt``). Its
  ``state_dict`` holds a student and an EMA teacher; the official ``embedding.load_model`` uses the
  teacher's encoder (``model.teacher.encoder.``), and so do we.
- ``beats``: microsoft/unilm's ``{"cfg": ..., "model": state_dict}`` (``BEATs_iter3.pt``; a fine-tuned
  checkpoint's classifier is left out).

Every tensor is checked against our module before anything is written.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from usad.teachers.atst_frame import ARCHS, FrameAST
from usad.teachers.base import TeacherError, check_state_dict
from usad.teachers.beats import Beats, BeatsConfig
from usad.teachers.pickles import read_pickled
from usad.teachers.prepare import sha256_file, write_teacher_dir  # one hashing helper

ATST_PREFIX = "model.teacher.encoder."
KINDS = ("atst-frame", "beats")


def _json_safe(value: object) -> object:
    """Hyper-parameters for teacher.json: plain values kept, anything else named by its type."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return f"<{type(value).__name__}>"


def atst_frame_state(checkpoint: object, source: Path) -> tuple[dict[str, Tensor], dict]:
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not any(k.startswith(ATST_PREFIX) for k in state):
        raise TeacherError(f"{source}: no '{ATST_PREFIX}*' tensors; not an ATST-Frame Lightning checkpoint")
    encoder = {k[len(ATST_PREFIX):]: v for k, v in state.items() if k.startswith(ATST_PREFIX)}
    widths = {dim: arch for arch, (dim, _, _) in ARCHS.items()}
    dim = encoder["pos_embed"].shape[-1] if "pos_embed" in encoder else None
    if dim not in widths:
        raise TeacherError(f"{source}: ATST-Frame width {dim}; known widths {sorted(widths)}")
    check_state_dict(encoder, FrameAST(*ARCHS[widths[dim]]), source)
    hyper = checkpoint.get("hyper_parameters", {})
    return encoder, {"arch": widths[dim], "prefix": ATST_PREFIX, "hyper_parameters": _json_safe(hyper)}


def beats_state(checkpoint: object, source: Path) -> tuple[dict[str, Tensor], dict]:
    if not (isinstance(checkpoint, dict) and isinstance(checkpoint.get("cfg"), dict) and "model" in checkpoint):
        raise TeacherError(f"{source}: expected BEATs' {{'cfg': ..., 'model': ...}} checkpoint")
    config = BeatsConfig.from_checkpoint(checkpoint["cfg"])
    state = {k: v for k, v in checkpoint["model"].items() if not k.startswith("predictor.")}
    check_state_dict(state, Beats(config), source)
    return state, {"cfg": _json_safe(checkpoint["cfg"])}


def convert(kind: str, checkpoint: str | Path, out: str | Path) -> Path:
    """Check and write an official checkpoint as a teacher directory; returns ``out``."""
    if kind not in KINDS:
        raise TeacherError(f"unknown checkpoint kind {kind!r}; convert one of {', '.join(KINDS)}")
    checkpoint, out = Path(checkpoint), Path(out)
    read = atst_frame_state if kind == "atst-frame" else beats_state
    state, info = read(read_pickled(checkpoint), checkpoint)
    info = {"teacher": kind, "source_file": checkpoint.name, "source_sha256": sha256_file(checkpoint), **info}
    return write_teacher_dir(out, info, state)
