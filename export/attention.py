"""The "fused" graph form: attention exported as ONNX Runtime's contrib ops, which its CPU kernels run fused.

Today's ("plain") attention exports as MatMul/Softmax over the full (B, H, T, T) scores plus an IsNaN/Where
guard that the exporter adds for fully masked rows; ONNX Runtime fuses none of it because RoPE and the guard
sit inside the pattern. While exporting, ``fused_attention`` swaps each ``SelfAttention.forward`` (model.py
is untouched) for one that emits

    qkv Linear -> Split -> RotaryEmbedding(q), RotaryEmbedding(k) -> MultiHeadAttention -> out Linear

on (B, T, D) tensors, with no transposes. MultiHeadAttention takes ONNX Runtime's flash-attention kernel
only without a mask input, so padded keys are masked through the scores themselves: q gets one extra
channel of ones per head and k one channel holding 0 on real frames and a large negative logit on padded
ones, so q . k adds that logit to every score of a padded key, which softmax then zeroes. No mask tensor
is built, none per score, and a batch of one pays one extra channel per head. ``scale`` stays
1 / sqrt(head_dim) of the real channels.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from usad.export.module_swap import swapped_forward
from usad.model import SelfAttention

# A padded key's score offset before the softmax scale: exp(-1e4) is 0 in float32, ORT's own mask_filter_value.
PADDED_KEY_LOGIT = -1.0e4
CONTRIB_DOMAIN = "com.microsoft"


def _contrib(op: str, inputs: tuple, attrs: dict, like: Tensor) -> Tensor:
    """One ONNX Runtime contrib op in the exported graph; its output has ``like``'s shape and dtype."""
    return torch.onnx.ops.symbolic(f"{CONTRIB_DOMAIN}::{op}", inputs, attrs, dtype=like.dtype, shape=like.shape,
                                   version=1)


def _with_padding_channel(x: Tensor, extra: Tensor, heads: int) -> Tensor:
    """(B, T, H * hd) + per-frame value (B, T) -> (B, T, H * (hd + 1)): ``extra`` appended to every head."""
    b, t, d = x.shape
    per_head = x.reshape(b, t, heads, d // heads)
    channel = extra[:, :, None, None].expand(b, t, heads, 1).to(x.dtype)
    return torch.cat([per_head, channel], dim=-1).reshape(b, t, heads * (d // heads + 1))


def _fused_forward(self: SelfAttention, x: Tensor, attn_mask: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """``SelfAttention.forward`` as contrib ops; x (B, T, D), attn_mask (B, 1, 1, T) bool (True = real key),
    cos / sin (T, hd / 2)."""
    d = x.shape[-1]
    head_dim = d // self.heads
    q, k, v = self.qkv(x).split(d, dim=-1)
    start = torch.zeros(1, dtype=torch.int64)  # position_ids of shape (1,): the first frame's position
    q, k = (_contrib("RotaryEmbedding", (y, start, cos, sin), {"interleaved": 0}, y) for y in (q, k))
    keys_real = attn_mask[:, 0, 0, :]
    padded_logit = (~keys_real).to(x.dtype) * (PADDED_KEY_LOGIT * math.sqrt(head_dim))
    q = _with_padding_channel(q, torch.ones_like(padded_logit), self.heads)
    k = _with_padding_channel(k, padded_logit, self.heads)
    y = _contrib("MultiHeadAttention", (q, k, v), {"num_heads": self.heads, "scale": 1.0 / math.sqrt(head_dim)}, v)
    return self.out(y)


def fused_attention(model: nn.Module):
    """While active, every ``SelfAttention`` of ``model`` exports as RotaryEmbedding + MultiHeadAttention.

    Only for ``torch.onnx.export(dynamo=True)``: the contrib ops have no eager implementation, so the parity
    check compares the exported graph against the untouched model."""
    return swapped_forward(model, SelfAttention, _fused_forward)

