"""``usad teachers untrained NAME --out DIR``: a randomly initialised teacher of a published architecture,
in the same directory format as a converted checkpoint. For tests and throughput runs where the real
weights are not at hand: the shapes, the compute and the code path are the real ones, the features
are not. ``teacher.json`` says ``"untrained": true``.

- ``wavlm-base-plus``: transformers' ``WavLMConfig()`` defaults, which are WavLM Base+'s architecture
  (12 layers x 768, group-norm conv feature encoder, 320 relative-position buckets), as an HF directory.
- ``atst-frame-base`` / ``atst-frame-small``: ``FrameAST`` as in ``usad teachers convert atst-frame``.
- ``beats-iter3``: BEATs with the released iter3 ``cfg``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from usad.teachers.atst_frame import ARCHS, FrameAST
from usad.teachers.base import TeacherError
from usad.teachers.beats import Beats, BeatsConfig
from usad.teachers.prepare import write_teacher_dir

# name -> the teacher.json "teacher" field (the load_teacher kind)
NAMES = {"wavlm-base-plus": "hf", "atst-frame-base": "atst-frame", "atst-frame-small": "atst-frame",
         "beats-iter3": "beats"}


def _init(module: nn.Module) -> None:
    """The official inits where it matters for sane activations: truncated-normal 0.02 weights and
    positional tables, zero biases, unit LayerNorm gains and gate scales, weight-norm gains equal to
    the norm of their direction (the conv starts as initialised)."""
    for name, param in module.named_parameters():
        if name.endswith("bias"):
            nn.init.zeros_(param)
        elif name.endswith("grep_a") or param.dim() == 1:
            nn.init.ones_(param)
        elif not name.endswith("weight_g"):
            nn.init.trunc_normal_(param, std=0.02)
    for sub in module.modules():
        if hasattr(sub, "weight_g"):
            sub.weight_g.data = sub.weight_v.norm(dim=(0, 1), keepdim=True)


def write_untrained(name: str, out: str | Path, seed: int = 0) -> Path:
    """Write a random-init teacher directory for ``name``; returns ``out``."""
    if name not in NAMES:
        raise TeacherError(f"unknown architecture {name!r}; choose one of {', '.join(NAMES)}")
    out = Path(out)
    torch.manual_seed(seed)
    info: dict = {"teacher": NAMES[name], "architecture": name, "untrained": True, "seed": seed}
    if name == "wavlm-base-plus":
        from transformers import WavLMConfig, WavLMModel

        try:
            WavLMModel(WavLMConfig()).save_pretrained(out)
        except OSError as err:
            raise TeacherError(f"{out}: cannot write the teacher there ({err})") from err
        return write_teacher_dir(out, info)
    if NAMES[name] == "atst-frame":
        info["arch"] = name.rsplit("-", 1)[1]
        module = FrameAST(*ARCHS[info["arch"]])
    else:
        info["cfg"] = {**dataclasses.asdict(BeatsConfig()), **BeatsConfig.FIXED}
        module = Beats(BeatsConfig())
    _init(module)
    return write_teacher_dir(out, info, module.state_dict())
