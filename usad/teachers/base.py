"""The teacher interface: 16 kHz waveforms + lengths in, per-layer features (or clip vectors) out.

Every adapter is a frozen ``nn.Module`` in eval mode whose forward returns a ``TeacherOutput``.
Frame-level teachers return layers (B, T, D) with their frame rate and a (B, T) mask of real
frames; clip-level teachers return layers (B, D) with ``frame_rate=None`` and ``mask=None``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor, nn

from usad.errors import UsadError

# What a frame-level teacher returns per Transformer block: the block's output ("hidden"), or the
# output of its feed-forward network before the residual add ("ffn"), which is what USAD's student
# predicts. Entry 0 is the first block's input either way, so layer j is block j for both.
LAYER_FEATURES = ("hidden", "ffn")


class TeacherError(UsadError, RuntimeError):
    """A teacher that cannot be loaded: bad spec, missing or mismatched weight file."""


def check_features(features: str) -> str:
    if features not in LAYER_FEATURES:
        raise TeacherError(f"features={features!r}: choose one of {', '.join(LAYER_FEATURES)}")
    return features


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


def run_by_length(encode: Callable[[Tensor], list[Tensor]], waveforms: Tensor, lengths: Tensor) -> list[Tensor]:
    """``encode((n, S)) -> layers [(n, T, D)]`` on each set of equal-length clips, without their padding,
    for networks that cannot mask it (GroupNorm over time, no attention mask). Returns the layers in
    batch order, zero-padded to the longest clip's frames: (B, T_max, D) each. Training crops are
    mostly of one length, so this is one big call and a few small ones."""
    results = [(rows, encode(waveforms[rows, : int(n)]))
               for n in lengths.unique() for rows in [(lengths == n).nonzero().squeeze(1)]]
    total = max(layers[0].shape[1] for _, layers in results)
    out = []
    for j, first in enumerate(results[0][1]):
        padded = first.new_zeros(len(lengths), total, first.shape[-1])
        for rows, layers in results:
            padded[rows, : layers[j].shape[1]] = layers[j]
        out.append(padded)
    return out


class Teacher(nn.Module):
    """Base of all adapters: frozen, always in eval mode; bf16 weights on GPU.

    Subclasses set ``frame_rate`` (None for clip-level) and implement ``forward``. Front ends run
    in float32 (STFTs and logs lose too much in bf16); the network runs in the weights' dtype.
    """

    frame_rate: float | None = None
    float32_modules: tuple[str, ...] = ()  # front ends (DFT bases, mel banks) that stay float32 on GPU

    def freeze(self, device: str | torch.device = "cpu") -> Teacher:
        device = torch.device(device)
        self.requires_grad_(False)
        self.to(device)
        if device.type == "cuda":
            # NHWC spares cuDNN a layout conversion around every 2-D convolution.
            self.to(dtype=torch.bfloat16, memory_format=torch.channels_last)
            for name in self.float32_modules:
                getattr(self, name).float()
        return self.eval()

    def train(self, mode: bool = True) -> Teacher:
        return super().train(False)  # a teacher never switches BatchNorm/dropout to training

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype


def check_state_dict(state: dict[str, Tensor], module: nn.Module, source: str | Path) -> None:
    """A missing, extra or wrongly shaped tensor is a ``TeacherError`` that names ``source`` and the
    tensor: a silently half-loaded teacher is worse than none."""
    expected = module.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise TeacherError(f"{source}: weights do not fit {type(module).__name__} "
                           f"(missing {missing[:4]}, unexpected {unexpected[:4]})")
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise TeacherError(f"{source}: tensor {key} has shape {tuple(tensor.shape)}, "
                               f"{type(module).__name__} expects {tuple(expected[key].shape)}")


def load_checked(path: str | Path, module: nn.Module, prefix: str = "") -> None:
    """Load a safetensors file into ``module`` strictly (``check_state_dict``)."""
    path = Path(path)
    if not path.is_file():
        raise TeacherError(f"{path}: teacher weight file not found (run `usad teachers prepare`)")
    try:
        state = load_file(path)
    except (SafetensorError, OSError) as err:
        raise TeacherError(f"{path}: unreadable safetensors file ({err})") from err
    state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    check_state_dict(state, module, path)
    module.load_state_dict(state)
