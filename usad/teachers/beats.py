"""BEATs (Chen et al., ICML 2023), the patch-based audio teacher of USAD's ablation, 6.25 Hz frames.

Architecture and tensor names follow the public source, microsoft/unilm (beats/BEATs.py,
backbone.py): Kaldi fbank (128 bins, povey window, waveform x 2^15, no utterance mean removal,
(x - 15.41663) / (2 x 6.55582)), 16 x 16 patches -> 512 -> LayerNorm -> Linear 768, tokens in time-major
order (8 frequency patches per 160 ms), a weight-normalised grouped Conv1d positional encoder,
post-LayerNorm blocks with DeepNorm residual scaling and WavLM's gated relative position bias (one
bucketed table, shared by all layers). Frame-level layers average the 8 frequency patches of each
time step, as audiossl's BEATs baseline does. Patches that reach past a clip's last fbank frame are
padding (the official mask keeps a partial patch), so a padded batch gives each clip what it gets alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from usad.config import SAMPLE_RATE
from usad.features import KaldiFbank
from usad.teachers.base import Teacher, TeacherError, TeacherOutput, check_features, frames_mask, load_checked

FBANK_MEAN, FBANK_STD, WAVE_SCALE = 15.41663, 6.55582, 2**15
FREQ_PATCHES = 8  # 128 mel bins / 16


@dataclass(frozen=True)
class BeatsConfig:
    """The fields of a BEATs checkpoint's ``cfg`` that shape the network (the pre-trained iter3 values)."""

    input_patch_size: int = 16
    embed_dim: int = 512
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    conv_pos: int = 128
    conv_pos_groups: int = 16
    num_buckets: int = 320
    max_distance: int = 800

    # What this implementation assumes of the rest of ``cfg`` (every released BEATs checkpoint has it).
    FIXED = {"conv_bias": False, "layer_norm_first": False, "deep_norm": True, "relative_position_embedding": True,
             "gru_rel_pos": True, "activation_fn": "gelu"}

    @classmethod
    def from_checkpoint(cls, cfg: dict) -> BeatsConfig:
        wrong = {k: cfg.get(k) for k, v in cls.FIXED.items() if cfg.get(k, v) != v}
        if wrong:
            raise TeacherError(f"BEATs cfg {wrong}: this adapter implements {cls.FIXED}")
        if cfg.get("input_patch_size", 16) != 16:
            raise TeacherError(f"BEATs input_patch_size {cfg['input_patch_size']}: only 16 x 16 patches exist here")
        return cls(**{f: cfg[f] for f in cls.__dataclass_fields__ if f in cfg})


def relative_buckets(length: int, num_buckets: int, max_distance: int, device: torch.device) -> Tensor:
    """(T, T) bucket of key - query offsets: exact up to num_buckets / 4, log-spaced to max_distance."""
    offset = torch.arange(length, device=device)[None, :] - torch.arange(length, device=device)[:, None]
    half = num_buckets // 2
    buckets = (offset > 0).long() * half
    distance = offset.abs()
    exact = half // 2
    far = exact + (torch.log(distance.float().clamp(min=1) / exact) / math.log(max_distance / exact)
                   * (half - exact)).long()
    return buckets + torch.where(distance < exact, distance, far.clamp(max=half - 1))


class WeightNormConv1d(nn.Module):
    """fairseq's ``weight_norm(Conv1d, dim=2)``, with the checkpoint's weight_g / weight_v tensors."""

    def __init__(self, dim: int, kernel: int, groups: int):
        super().__init__()
        self.groups = groups
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.randn(dim, dim // groups, kernel) * 0.02)
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight_g * self.weight_v / self.weight_v.norm(dim=(0, 1), keepdim=True)
        kernel = weight.shape[-1]
        return F.conv1d(x, weight, self.bias, padding=kernel // 2, groups=self.groups)[..., : x.shape[-1]]


class SelfAttention(nn.Module):
    def __init__(self, config: BeatsConfig, has_bias_table: bool):
        super().__init__()
        dim, self.heads = config.encoder_embed_dim, config.encoder_attention_heads
        self.k_proj, self.v_proj, self.q_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))
        self.grep_linear = nn.Linear(dim // self.heads, 8)
        self.grep_a = nn.Parameter(torch.ones(1, self.heads, 1, 1))
        if has_bias_table:
            self.relative_attention_bias = nn.Embedding(config.num_buckets, self.heads)

    def forward(self, x: Tensor, position_bias: Tensor, key_mask: Tensor) -> Tensor:
        """x (B, T, D), position_bias (H, T, T), key_mask (B, 1, 1, T) bool -> (B, T, D)."""
        b, t, d = x.shape
        q, k, v = (p(x).reshape(b, t, self.heads, -1).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        # Gated relative position bias (WavLM): a per-query, per-head gate computed from the query.
        gate_a, gate_b = torch.sigmoid(self.grep_linear(q).reshape(b, self.heads, t, 2, 4).sum(-1)).chunk(2, dim=-1)
        bias = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * position_bias
        bias = bias.masked_fill(~key_mask, -torch.inf)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.out_proj(y.transpose(1, 2).reshape(b, t, d))


class EncoderLayer(nn.Module):
    """DeepNorm post-LN block; returns the new x and the FFN output (before the residual)."""

    def __init__(self, config: BeatsConfig, has_bias_table: bool):
        super().__init__()
        dim = config.encoder_embed_dim
        self.self_attn = SelfAttention(config, has_bias_table)
        self.self_attn_layer_norm, self.final_layer_norm = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, config.encoder_ffn_embed_dim), nn.Linear(config.encoder_ffn_embed_dim, dim)
        self.alpha = (2 * config.encoder_layers) ** 0.25

    def forward(self, x: Tensor, position_bias: Tensor, key_mask: Tensor) -> tuple[Tensor, Tensor]:
        x = self.self_attn_layer_norm(x * self.alpha + self.self_attn(x, position_bias, key_mask))
        ffn = self.fc2(F.gelu(self.fc1(x)))
        return self.final_layer_norm(x * self.alpha + ffn), ffn


class TransformerEncoder(nn.Module):
    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.config = config
        dim = config.encoder_embed_dim
        self.pos_conv = nn.Sequential(WeightNormConv1d(dim, config.conv_pos, config.conv_pos_groups))
        self.layer_norm = nn.LayerNorm(dim)
        self.layers = nn.ModuleList(EncoderLayer(config, i == 0) for i in range(config.encoder_layers))
        for layer in self.layers[1:]:  # one bias table, registered under every layer as in the checkpoint
            layer.self_attn.relative_attention_bias = self.layers[0].self_attn.relative_attention_bias

    def forward(self, x: Tensor, valid: Tensor, features: str) -> list[Tensor]:
        x = x * valid[..., None]
        x = self.layer_norm(x + F.gelu(self.pos_conv(x.transpose(1, 2))).transpose(1, 2))
        buckets = relative_buckets(x.shape[1], self.config.num_buckets, self.config.max_distance, x.device)
        position_bias = self.layers[0].self_attn.relative_attention_bias(buckets).permute(2, 0, 1).float()
        key_mask = (valid | ~valid.any(1, keepdim=True))[:, None, None, :]
        layers = [x]
        for layer in self.layers:
            x, ffn = layer(x, position_bias, key_mask)
            layers.append(x if features == "hidden" else ffn)
        return layers


class Beats(nn.Module):
    """Normalised fbank (B, F, 128) -> tokens (B, F // 16 * 8, D). Tensor names as the checkpoint's."""

    def __init__(self, config: BeatsConfig):
        super().__init__()
        size = config.input_patch_size
        self.patch_embedding = nn.Conv2d(1, config.embed_dim, size, stride=size, bias=False)
        self.layer_norm = nn.LayerNorm(config.embed_dim)
        self.post_extract_proj = nn.Linear(config.embed_dim, config.encoder_embed_dim)
        self.encoder = TransformerEncoder(config)

    def tokens(self, fbank: Tensor) -> Tensor:
        x = self.patch_embedding(fbank[:, None])  # (B, 512, F // 16, 8)
        return self.post_extract_proj(self.layer_norm(x.flatten(2).transpose(1, 2)))


class BeatsTeacher(Teacher):
    """Layers: the encoder input, then every layer (``features``: hidden or ffn), frequency-averaged, 6.25 Hz."""

    frame_rate = SAMPLE_RATE / 160 / 16
    float32_modules = ("fbank",)

    def __init__(self, path: str | Path, features: str = "hidden"):
        super().__init__()
        import json

        path = Path(path)
        info = path / "teacher.json"
        if not info.is_file():
            raise TeacherError(f"{path}: no teacher.json (run `usad teachers convert beats CKPT --out DIR`)")
        self.features = check_features(features)
        self.fbank = KaldiFbank(128, window_type="povey", remove_utterance_mean=False, norm_mean=FBANK_MEAN,
                                norm_std=FBANK_STD)
        self.net = Beats(BeatsConfig.from_checkpoint(json.loads(info.read_text()).get("cfg", {})))
        load_checked(path / "model.safetensors", self.net)

    @torch.no_grad()
    def forward(self, waveforms: Tensor, lengths: Tensor) -> TeacherOutput:
        fbank, frames = self.fbank(waveforms.float() * WAVE_SCALE, lengths)
        steps = fbank.shape[1] // 16
        tokens = self.net.tokens(fbank[:, : steps * 16].to(self.dtype))
        valid_steps = frames // 16
        valid = frames_mask(valid_steps, steps).repeat_interleave(FREQ_PATCHES, dim=1)
        layers = self.net.encoder(tokens, valid, self.features)
        layers = [x.reshape(x.shape[0], steps, FREQ_PATCHES, -1).mean(2) for x in layers]
        return TeacherOutput(layers, self.frame_rate, frames_mask(valid_steps, steps))
