"""The teacher interface: 16 kHz waveforms + lengths in, per-layer features (or clip vectors) out.

Every adapter is a frozen ``nn.Module`` in eval mode whose forward returns a ``TeacherOutput``.
Frame-level teachers return layers (B, T, D) with their frame rate and a (B, T) mask of real
frames; clip-level teachers return layers (B, D) with ``frame_rate=None`` and ``mask=None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor, nn

from usad.errors import UsadError


class TeacherError(UsadError, RuntimeError):
    """A teacher that cannot be loaded: bad spec, missing or mismatched weight file."""


@dataclass
class TeacherOutput:
    layers: list[Tensor]  # frame-level (B, T, D) each, or clip-level (B, D)
    frame_rate: float | None  # frames per second; None for clip-level teachers
    mask: Tensor | None  # (B, T) bool, True on real frames; None for clip-level teachers

    @property
    def clip_level(self) -> bool:
        return self.frame_rate is None


def frames_mask(frames: Tensor, total: int) -> Tensor:
    """(B,) valid frame counts -> (B, total) bool mask."""
    return torch.arange(total, device=frames.device)[None, :] < frames[:, None]


class Teacher(nn.Module):
    """Base of all adapters: frozen, always in eval mode; bf16 weights on GPU.

    Subclasses set ``frame_rate`` (None for clip-level) and implement ``forward``. Front ends run
    in float32 (STFTs and logs lose too much in bf16); the network runs in the weights' dtype.
    """

    frame_rate: float | None = None

    def freeze(self, device: str | torch.device = "cpu") -> Teacher:
        device = torch.device(device)
        self.requires_grad_(False)
        self.to(device)
        if device.type == "cuda":
            # NHWC spares cuDNN a layout conversion around every 2-D convolution.
            self.to(dtype=torch.bfloat16, memory_format=torch.channels_last)
        return self.eval()

    def train(self, mode: bool = True) -> Teacher:
        return super().train(False)  # a teacher never switches BatchNorm/dropout to training

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype


def load_checked(path: str | Path, module: nn.Module, prefix: str = "") -> None:
    """Load a safetensors file into ``module`` strictly; a missing, extra or wrongly shaped tensor is a
    ``TeacherError`` that names the file and the tensor (a silently half-loaded teacher is worse)."""
    path = Path(path)
    if not path.is_file():
        raise TeacherError(f"{path}: teacher weight file not found (run `usad teachers prepare`)")
    try:
        state = load_file(path)
    except (SafetensorError, OSError) as err:
        raise TeacherError(f"{path}: unreadable safetensors file ({err})") from err
    state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    expected = module.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise TeacherError(f"{path}: weights do not fit {type(module).__name__} "
                           f"(missing {missing[:4]}, unexpected {unexpected[:4]})")
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise TeacherError(f"{path}: tensor {key} has shape {tuple(tensor.shape)}, "
                               f"{type(module).__name__} expects {tuple(expected[key].shape)}")
    module.load_state_dict(state)
