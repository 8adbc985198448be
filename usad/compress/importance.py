"""Channel importance of a trained encoder, measured on real audio (activation x weight norm).

Every score is "how much does this unit feed downstream": the mean absolute activation of the unit on
real frames times the norm of the weights that read it (Wanda-style), so a unit that is loud but
ignored, or read strongly but always silent, both rank low. Shapes: D model width, H heads, F FFN width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from usad.config import fbank_frames
from usad.model import UsadEncoder, conv_frames


@dataclass
class Importance:
    residual: Tensor  # (D,) residual-stream channels, shared by every layer
    heads: list[Tensor]  # per block (H,)
    ffn: list[Tensor]  # per block (F,)
    conv1: Tensor  # (C,) subsampler conv1 output channels
    conv2: Tensor  # (C,) subsampler conv2 output channels


def pad_batch(clips: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
    """1-D float32 clips -> zero-padded (B, S) waveforms and (B,) lengths."""
    lengths = torch.tensor([len(c) for c in clips], dtype=torch.int64)
    waveforms = torch.zeros(len(clips), int(lengths.max()))
    for row, clip in enumerate(clips):
        waveforms[row, : len(clip)] = torch.from_numpy(np.asarray(clip, dtype=np.float32))
    return waveforms, lengths


class _Meter:
    """Running sum of |activation| per channel over real frames."""

    def __init__(self):
        self.total, self.count = None, 0

    def add(self, x: Tensor, mask: Tensor) -> None:
        """x (B, T, C) with mask (B, T) or (B, C, F, T) with mask (B, T)."""
        if x.dim() == 4:
            x = x.abs().mean(2).transpose(1, 2)  # (B, T, C), averaged over frequency
        w = mask[..., None].to(x.dtype)
        s = (x.abs() * w).sum((0, 1)).double()
        self.total = s if self.total is None else self.total + s
        self.count += int(mask.sum())

    @property
    def mean(self) -> Tensor:
        return (self.total / max(self.count, 1)).float()


@torch.no_grad()
def measure_importance(model: UsadEncoder, clips: Sequence[np.ndarray], batch_size: int = 8) -> Importance:
    """Run ``model`` over ``clips`` (16 kHz float32) and score its channels, heads and FFN units."""
    if not clips:
        raise ValueError("importance needs at least one calibration clip of real audio")
    model = model.eval()
    device = next(model.parameters()).device
    cfg = model.config
    hd = cfg.dim // cfg.heads
    meters: dict[str, _Meter] = {}
    state: dict[str, Tensor] = {}

    def meter(name: str) -> _Meter:
        return meters.setdefault(name, _Meter())

    def subsampler_hook(name: str):
        def hook(_module, _inputs, output):
            act = torch.nn.functional.gelu(output)
            frames = state[name]
            meter(name).add(act, torch.arange(act.shape[-1], device=device)[None] < frames[:, None])
        return hook

    def head_hook(i: int):
        # Input of attn.out is the concatenated head outputs (B, T, D): score each head by the norm
        # of what it writes into the residual stream, out.weight[:, head] @ y_head.
        def hook(module, inputs):
            y = inputs[0]
            b, t, _ = y.shape
            w = module.weight.view(module.weight.shape[0], cfg.heads, hd).permute(1, 2, 0)  # (H, hd, D)
            contrib = torch.einsum("bthc,hcd->bthd", y.view(b, t, cfg.heads, hd), w).norm(dim=-1)
            meter(f"heads{i}").add(contrib, state["mask"])
        return hook

    def ffn_hook(i: int):
        def hook(_module, _inputs, output):
            meter(f"ffn{i}").add(output, state["mask"])
        return hook

    handles = [model.subsampler.conv1.register_forward_hook(subsampler_hook("conv1")),
               model.subsampler.conv2.register_forward_hook(subsampler_hook("conv2"))]
    for i, block in enumerate(model.blocks):
        handles.append(block.attn.out.register_forward_pre_hook(head_hook(i)))
        handles.append(block.ffn[1].register_forward_hook(ffn_hook(i)))
    residual = torch.zeros(cfg.dim, dtype=torch.float64, device=device)
    try:
        for start in range(0, len(clips), batch_size):
            waveforms, lengths = pad_batch(clips[start:start + batch_size])
            waveforms, lengths = waveforms.to(device), lengths.to(device)
            # Valid frames after each subsampler conv and at the encoder rate, for the hooks.
            state["conv1"] = conv_frames(fbank_frames(lengths), model.subsampler.strides[0])
            state["conv2"] = conv_frames(state["conv1"], model.subsampler.strides[1])
            frames = model.num_frames(lengths)
            state["mask"] = torch.arange(int(frames.max()), device=device)[None] < frames[:, None]
            out = model(waveforms, lengths)
            for hidden in out.hidden_states:
                # Each layer counts equally: normalise its channel profile before summing.
                m = _Meter()
                m.add(hidden, out.mask)
                residual += (m.mean / m.mean.mean().clamp(min=1e-12)).double()
    finally:
        for handle in handles:
            handle.remove()

    # Weight norms of the readers of each unit.
    readers = torch.zeros(cfg.dim, device=device)
    for block in model.blocks:
        readers += block.attn.qkv.weight.norm(dim=0) * block.norm1.weight.abs()
        readers += block.ffn[0].weight.norm(dim=0) * block.norm2.weight.abs()
    proj = model.subsampler.proj.weight.view(cfg.dim, cfg.subsampler_channels, -1)
    return Importance(
        residual=residual.float() * readers / readers.mean(),
        heads=[meters[f"heads{i}"].mean for i in range(cfg.depth)],
        ffn=[meters[f"ffn{i}"].mean * block.ffn[2].weight.norm(dim=0) for i, block in enumerate(model.blocks)],
        conv1=meters["conv1"].mean * torch.linalg.vector_norm(model.subsampler.conv2.weight, dim=(0, 2, 3)),
        conv2=meters["conv2"].mean * torch.linalg.vector_norm(proj, dim=(0, 2)),
    )
