"""Frozen domain teachers behind one interface: ``load_teacher(spec)(waveforms, lengths) -> TeacherOutput``.

Specs: ``whisper:DIR``, ``aisfx:DIR``, ``crepe:DIR`` (tiny or full), ``basic-pitch:DIR``, ``usad:MODEL_DIR``,
``hf:DIR`` (WavLM, HuBERT, wav2vec2, data2vec-audio), ``atst-frame:DIR``, ``beats:DIR`` and
``usad-hf:REPO --trust-remote-code``. Frame-level Transformer teachers (hf, atst-frame, beats) take
``features="hidden"`` (each block's output) or ``"ffn"`` (its feed-forward output, USAD's targets).
"""

from __future__ import annotations

import inspect

import torch

from usad.teachers.base import Teacher, TeacherError, TeacherOutput
from usad.teachers.prepare import prepare

REMOTE_CODE_FLAG = "--trust-remote-code"
KINDS = ("whisper", "aisfx", "crepe", "basic-pitch", "usad", "hf", "atst-frame", "beats", "usad-hf")


def load_teacher(spec: str, device: str | torch.device = "cpu", trust_remote_code: bool = False,
                 **options) -> Teacher:
    """A frozen teacher in eval mode on ``device`` (bf16 weights on GPU) from a ``kind:path`` spec."""
    spec = spec.strip()
    if spec.endswith(REMOTE_CODE_FLAG):
        spec, trust_remote_code = spec[: -len(REMOTE_CODE_FLAG)].strip(), True
    kind, sep, path = spec.partition(":")
    if not sep or not path or kind not in KINDS:
        raise TeacherError(f"teacher spec {spec!r}: expected KIND:PATH with KIND one of {', '.join(KINDS)}")
    if kind == "whisper":
        from usad.teachers.whisper import WhisperTeacher as cls
    elif kind == "aisfx":
        from usad.teachers.aisfx import AisfxTeacher as cls
    elif kind == "crepe":
        from usad.teachers.crepe import CrepeTeacher as cls
    elif kind == "basic-pitch":
        from usad.teachers.basic_pitch import BasicPitchTeacher as cls
    elif kind == "usad":
        from usad.teachers.usad_dir import UsadDirTeacher as cls
    elif kind == "hf":
        from usad.teachers.hf import HFAudioTeacher as cls
    elif kind == "atst-frame":
        from usad.teachers.atst_frame import AtstFrameTeacher as cls
    elif kind == "beats":
        from usad.teachers.beats import BeatsTeacher as cls
    else:
        from usad.teachers.hf import UsadHubTeacher

        return UsadHubTeacher(path, trust_remote_code=trust_remote_code).freeze(device)
    unknown = sorted(set(options) - set(inspect.signature(cls).parameters))
    if unknown:
        raise TeacherError(f"teacher {kind}: unknown option(s) {', '.join(unknown)}")
    return cls(path, **options).freeze(device)


__all__ = ["Teacher", "TeacherError", "TeacherOutput", "load_teacher", "prepare"]
