"""The USAD student encoder: fbank -> conv subsampler -> conv positional encoder -> Transformer.

Shapes: B batch, S samples (16 kHz), F fbank frames (100 Hz), T encoder frames (50 or 25 Hz),
D model width, H heads. Padded frames are zeroed before every convolution and masked in attention,
so a padded batch gives each clip the outputs it gets alone.

A streaming encoder (``config.streaming``) has causal convolutions (left padding only: no frame
sees the future through them), no per-utterance mean removal (Kaldi's per-frame DC removal makes
it a no-op anyway) and chunked attention (usad.stream_mask); ``full_context=True`` runs the same
weights with attention over the whole clip. usad.stream_step runs it chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from usad.config import FRAME_LENGTH, SAMPLE_RATE, EncoderConfig, get_preset
from usad.features import KaldiFbank
from usad.stream_mask import chunk_layout


@dataclass
class EncoderOutput:
    hidden_states: list[Tensor]  # depth + 1 tensors (B, T, D): positional encoder output, then each block
    mask: Tensor  # (B, T) bool, True on real frames

    def pooled(self, layer: int = -1) -> Tensor:
        """Mean over real frames of one layer: (B, D)."""
        weights = self.mask[..., None].to(self.hidden_states[layer].dtype)
        return (self.hidden_states[layer] * weights).sum(1) / weights.sum(1).clamp(min=1)


def _masked(x: Tensor, mask: Tensor) -> Tensor:
    """Zero padded frames of (B, T, C) or (B, C, F, T)-shaped tensors; mask (B, T)."""
    if x.dim() == 3:
        return x * mask[..., None].to(x.dtype)
    return x * mask[:, None, None, :].to(x.dtype)


def conv_frames(frames: Tensor, stride: int) -> Tensor:
    """Output frames of a kernel-3, padding-1 convolution with this stride (or its causal twin, padding 2, 0)."""
    return (frames - 1) // stride + 1


def causal_conv(conv: nn.Conv1d | nn.Conv2d, x: Tensor, cache: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """A convolution without time padding over (..., T) inputs, after ``cache``: the last k - 1 input
    frames of the previous call, or zeros (causal padding). Returns the output and the next cache.

    With strided convolutions every call must take a multiple of the stride in frames, so that
    output k always reads input frames [s k - (k_t - 1), s k]."""
    kernel = conv.kernel_size[-1]
    if cache is None:
        cache = x.new_zeros(*x.shape[:-1], kernel - 1)
    x = torch.cat([cache, x], -1)
    return conv(x), x[..., x.shape[-1] - (kernel - 1):]


class ConvSubsampler(nn.Module):
    """Normalised fbank (B, F, n_mels) -> (B, T, D) at the encoder frame rate, then LayerNorm."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        channels, kernel_f = config.subsampler_channels, config.subsampler_freq_kernel
        self.strides = config.subsampler_strides
        self.causal = config.streaming
        pad_t = 0 if self.causal else 1  # causal: padded by causal_conv on the left only
        self.conv1 = nn.Conv2d(
            1, channels, (kernel_f, 3), stride=(config.subsampler_freq_stride, self.strides[0]), padding=(0, pad_t)
        )
        self.conv2 = nn.Conv2d(channels, channels, (kernel_f, 3), stride=(1, self.strides[1]), padding=(0, pad_t))
        freq = (config.n_mels - kernel_f) // config.subsampler_freq_stride + 1 - (kernel_f - 1)
        self.proj = nn.Linear(channels * freq, config.dim)
        self.norm = nn.LayerNorm(config.dim)

    def forward(self, fbank: Tensor, frames: Tensor) -> tuple[Tensor, Tensor]:
        # Convolutions run over (freq, time) with time last, the layout ONNX targets like best.
        x = fbank.transpose(1, 2)[:, None]  # (B, 1, n_mels, F)
        for conv, stride in ((self.conv1, self.strides[0]), (self.conv2, self.strides[1])):
            frames = conv_frames(frames, stride)
            x = F.gelu(causal_conv(conv, x)[0] if self.causal else conv(x))
            mask = torch.arange(x.shape[-1], device=x.device)[None, :] < frames[:, None]
            x = _masked(x, mask)
        return _masked(self.project(x), mask), mask

    def project(self, x: Tensor) -> Tensor:
        """Conv features (B, C, F', T) -> LayerNorm(proj(...)) (B, T, D)."""
        b, c, f, t = x.shape
        return self.norm(self.proj(x.permute(0, 3, 1, 2).reshape(b, t, c * f)))


class ConvPositionalEncoder(nn.Module):
    """data2vec-2.0 style: a stack of grouped 'same' Conv1d + LayerNorm + GELU, added residually. (B, T, D)."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.causal = config.streaming
        padding = 0 if self.causal else config.pos_conv_kernel // 2  # causal: see causal_conv
        self.convs = nn.ModuleList(
            nn.Conv1d(config.dim, config.dim, config.pos_conv_kernel, padding=padding, groups=config.pos_conv_groups)
            for _ in range(config.pos_conv_layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(config.dim, elementwise_affine=False)
                                   for _ in range(config.pos_conv_layers))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        if self.causal:
            return _masked(self.stream(x, [None] * len(self.convs), mask)[0], mask)
        y = x
        for conv, norm in zip(self.convs, self.norms):
            y = F.gelu(norm(conv(_masked(y, mask).transpose(1, 2)).transpose(1, 2)))
        return _masked(x + y, mask)

    def stream(self, x: Tensor, caches: list[Tensor | None], mask: Tensor | None = None) -> tuple[Tensor, list[Tensor]]:
        """Causal form over (B, T, D) after per-layer ``caches`` (B, D, k - 1) (None: zeros); -> x + y, next caches."""
        y, next_caches = x, []
        for conv, norm, cache in zip(self.convs, self.norms, caches):
            out, cache = causal_conv(conv, (y if mask is None else _masked(y, mask)).transpose(1, 2), cache)
            y = F.gelu(norm(out.transpose(1, 2)))
            next_caches.append(cache)
        return x + y, next_caches


def rotary_tables(frames: int, head_dim: int, base: float, device: torch.device) -> tuple[Tensor, Tensor]:
    """cos, sin of shape (T, head_dim // 2) for rotary position embeddings."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
    angles = torch.arange(frames, device=device, dtype=torch.float32)[:, None] * inv_freq[None, :]
    return torch.cos(angles), torch.sin(angles)


def rotary_at(positions: Tensor, head_dim: int, base: float) -> tuple[Tensor, Tensor]:
    """cos, sin (N, head_dim // 2) at frame ``positions`` (N,), the angles in float64: the chunked path
    rotates absolute positions here and relative ones in the streaming step, equal only when exact."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim)
    angles = positions.double()[:, None] * inv_freq.double()[None, :]
    return torch.cos(angles).float(), torch.sin(angles).float()


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x (B, H, T, hd): rotate channel pairs (i, i + hd/2) by position-dependent angles."""
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class SelfAttention(nn.Module):
    """Multi-head self-attention with rotary positions through scaled_dot_product_attention."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.heads = config.heads
        self.qkv = nn.Linear(config.dim, 3 * config.dim)
        self.out = nn.Linear(config.dim, config.dim)
        self.dropout = config.dropout

    def forward(self, x: Tensor, attn_mask: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        q, k, v = self.heads_of(x)
        return self.attend(apply_rotary(q, cos, sin), apply_rotary(k, cos, sin), v, attn_mask)

    def heads_of(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B, T, D) -> q, k, v (B, H, T, hd), before rotary."""
        b, t, d = x.shape
        # Explicit reshape with -1 for time keeps length dynamic in both ONNX exporters.
        return self.qkv(x).reshape(b, -1, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor) -> Tensor:
        """Rotated q (B, H, Tq, hd), k and v (B, H, Tk, hd), mask broadcastable to (B, H, Tq, Tk) -> (B, Tq, D)."""
        b, _, _, hd = q.shape
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(y.transpose(1, 2).reshape(b, -1, self.heads * hd))


class TransformerBlock(nn.Module):
    """Pre-LayerNorm block: x + attn(LN(x)), then x + FFN(LN(x)). (B, T, D) -> (B, T, D)."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        hidden = int(config.dim * config.ffn_ratio)
        self.norm1 = nn.LayerNorm(config.dim)
        self.attn = SelfAttention(config)
        self.norm2 = nn.LayerNorm(config.dim)
        self.ffn = nn.Sequential(nn.Linear(config.dim, hidden), nn.GELU(), nn.Linear(hidden, config.dim))
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, attn_mask: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        return self.feed_forward(x + self.drop(self.attn(self.norm1(x), attn_mask, cos, sin)))

    def feed_forward(self, x: Tensor) -> Tensor:
        """The block's second half, x + FFN(LN(x)); the streaming step calls it after its cached attention."""
        return x + self.drop(self.ffn(self.norm2(x)))


class UsadEncoder(nn.Module):
    """Waveforms (B, S) at 16 kHz + lengths (B,) -> EncoderOutput with depth + 1 hidden states."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.fbank = KaldiFbank(config.n_mels)
        self.subsampler = ConvSubsampler(config)
        self.pos_encoder = ConvPositionalEncoder(config)
        self.blocks = nn.ModuleList(TransformerBlock(config) for _ in range(config.depth))
        self.final_norm = nn.LayerNorm(config.dim)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def forward(self, waveforms: Tensor, lengths: Tensor | None = None, full_context: bool = False) -> EncoderOutput:
        """``full_context``: a streaming encoder attends over the whole clip (its convolutions stay causal)."""
        if waveforms.dim() != 2:
            raise ValueError(f"waveforms must be (batch, samples), got shape {tuple(waveforms.shape)}")
        if not torch.compiler.is_compiling() and waveforms.shape[1] < FRAME_LENGTH:
            raise ValueError(f"audio shorter than one 25 ms frame ({FRAME_LENGTH} samples at 16 kHz)")
        if lengths is None:
            lengths = torch.full((waveforms.shape[0],), waveforms.shape[1], device=waveforms.device)
        config = self.config
        fbank, frames = self.fbank(waveforms, lengths, remove_mean=not config.streaming)
        x, mask = self.subsampler(fbank, frames)
        x = self.pos_encoder(x, mask)
        hidden_states, t = [x], x.shape[1]
        right_context = config.streaming and not full_context and config.lookahead_frames > 0
        if config.streaming and not full_context:
            layout = chunk_layout(mask, config.chunk_frames, config.left_frames, config.lookahead_frames)
            attn_mask = layout.attn_mask
            cos, sin = rotary_at(layout.source, config.dim // config.heads, config.rope_base)
            x = x[:, layout.source] if right_context else x  # main rows, then right-context copies
        else:
            attn_mask = mask[:, None, None, :]  # keys only: padded queries are zeroed on the way out
            cos, sin = rotary_tables(t, config.dim // config.heads, config.rope_base, x.device)
        for i, block in enumerate(self.blocks):
            x = block(x, attn_mask, cos, sin)
            out = self.final_norm(x) if i == len(self.blocks) - 1 else x
            hidden_states.append(_masked(out[:, :t] if right_context else out, mask))
        return EncoderOutput(hidden_states, mask)

    def num_frames(self, lengths: Tensor) -> Tensor:
        """Encoder frames for clips of ``lengths`` samples."""
        return self.config.num_frames(lengths)

    def flops(self, seconds: float, batch: int = 1) -> float:
        """FLOPs (2 x multiply-adds, torch's FLOP counter) of one forward on ``batch`` clips of ``seconds``.

        Counted on one clip and scaled by the batch (linear in it); attention makes it grow a little faster
        than linearly in length."""
        from torch.utils.flop_counter import FlopCounterMode

        wave = torch.zeros(1, int(seconds * SAMPLE_RATE), device=next(self.parameters()).device)
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            self(wave)
        return float(counter.get_total_flops()) * batch

    def gflops_per_second(self) -> float:
        """GFLOPs per second of audio, counted on a 10 s clip."""
        return self.flops(10.0) / 10 / 1e9


def create_model(name: str, **overrides) -> UsadEncoder:
    """A freshly initialised encoder of a named preset, e.g. ``create_model("usad-tiny")``."""
    return UsadEncoder(get_preset(name, **overrides))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
