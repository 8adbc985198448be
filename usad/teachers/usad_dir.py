"""A USAD model directory as a teacher: the full student becomes the teacher of compression."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from usad.teachers.base import Teacher, TeacherError, TeacherOutput


class UsadDirTeacher(Teacher):
    """Layers: the encoder's depth + 1 hidden states at its frame rate (50 or 25 Hz)."""

    def __init__(self, path: str | Path):
        super().__init__()
        from usad.modeldir import ModelDirError, load

        try:
            self.model = load(path)
        except ModelDirError as err:
            raise TeacherError(str(err)) from err
        self.frame_rate = float(self.model.config.frame_rate)

    def freeze(self, device: str | torch.device = "cpu") -> Teacher:
        # The fbank's DFT basis must stay float32; on GPU the encoder runs under bf16 autocast instead.
        self.requires_grad_(False)
        return self.to(device).eval()

    def forward(self, waveforms: Tensor, lengths: Tensor) -> TeacherOutput:
        with torch.no_grad():
            with torch.autocast("cuda", torch.bfloat16, enabled=waveforms.is_cuda):
                out = self.model(waveforms.float(), lengths)
            return TeacherOutput(out.hidden_states, self.frame_rate, out.mask)
