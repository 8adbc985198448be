"""The stateful chunk encoder: one call encodes one chunk of a stream, every cache explicit.

A call takes the chunk's new audio and the caches the previous call returned, and gives the C
frames of chunk n (frames n C .. n C + C - 1) at each chosen layer, equal to the masked
full-sequence forward of a streaming ``UsadEncoder`` (usad.stream_mask) on the whole stream:

  fbank_overlap      (B, 240)                  last samples of the previous call (a window spans 400)
  subsampler_cache1  (B, 1, n_mels, 2)         last 2 fbank frames before the causal conv1
  subsampler_cache2  (B, C_s, F_1, 2)          last 2 conv1 frames before conv2
  pos_cache          (P, B, D, k - 1)          per positional conv: its last k - 1 input frames
  kv_cache           (depth, 2, B, H, L, hd)   per block: keys (before rotary) and values of the L
                                               frames before the chunk
  lookahead          (B, R, D)                 (R > 0 only) positional-encoder output of the R frames
                                               after the previous chunk: this chunk's first frames

New audio per call: (C + R) frames' worth of samples on the first call (C * hop + R * hop), C
frames' worth after; ``fbank_overlap`` starts as the stream's first 240 samples. ``start_frame``
(n C) tells which cached frames exist yet; ``valid_frames`` (C + R, fewer at the end of the
stream) which of the chunk's rows are real. Rotary angles use positions relative to the cache's
first frame, constant per call and exact (rotation only sees differences), so a stream can run
for hours without positions growing. usad.streaming drives it (numpy; torch or ONNX Runtime).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from usad.model import UsadEncoder, apply_rotary, causal_conv, rotary_at
from usad.streaming import CONTROL_INPUTS, FBANK_OVERLAP, STATE_NAMES, next_name


class StreamStep(nn.Module):
    """One chunk of a streaming ``model``; ``layers`` index its hidden states (0 = positional encoder)."""

    def __init__(self, model: UsadEncoder, layers: list[int]):
        super().__init__()
        config = model.config
        if not config.streaming:
            raise ValueError(f"{config.name} is a full-context encoder (stream_chunk_ms = 0); "
                             "train a streaming preset such as usad-tiny-stream")
        self.model, self.layers = model.eval(), layers
        self.chunk, self.left, self.lookahead = config.chunk_frames, config.left_frames, config.lookahead_frames
        cos, sin = rotary_at(torch.arange(self.left + self.chunk + self.lookahead), config.dim // config.heads,
                             config.rope_base)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    @property
    def state_names(self) -> tuple[str, ...]:
        return STATE_NAMES if self.lookahead else STATE_NAMES[:-1]

    def state_shapes(self, batch: int = 1) -> dict[str, tuple[int, ...]]:
        """Shape of every cache, for zero initial states (``fbank_overlap`` then takes real samples)."""
        config, sub = self.model.config, self.model.subsampler
        freq1 = (config.n_mels - config.subsampler_freq_kernel) // config.subsampler_freq_stride + 1
        kernel = config.pos_conv_kernel
        shapes = {"fbank_overlap": (batch, FBANK_OVERLAP), "subsampler_cache1": (batch, 1, config.n_mels, 2),
                  "subsampler_cache2": (batch, sub.conv1.out_channels, freq1, 2),
                  "pos_cache": (config.pos_conv_layers, batch, config.dim, kernel - 1),
                  "kv_cache": (config.depth, 2, batch, config.heads, self.left, config.dim // config.heads),
                  "lookahead": (batch, self.lookahead, config.dim)}
        return {name: shapes[name] for name in self.state_names}

    def _mask(self, start_frame: Tensor, valid_frames: Tensor) -> Tensor:
        """(1, 1, C + R, L + C + R) bool: real cached frames, real chunk rows, and always the row itself."""
        rows, left = self.chunk + self.lookahead, self.left
        cached = start_frame - left + torch.arange(left, device=start_frame.device) >= 0
        real = torch.arange(rows, device=start_frame.device) < valid_frames
        keys = torch.arange(left + rows, device=start_frame.device)
        itself = keys[None, :] == left + torch.arange(rows, device=start_frame.device)[:, None]
        return (torch.cat([cached, real])[None, :] | itself)[None, None]

    def forward(self, audio: Tensor, start_frame: Tensor, valid_frames: Tensor, fbank_overlap: Tensor,
                subsampler_cache1: Tensor, subsampler_cache2: Tensor, pos_cache: Tensor, kv_cache: Tensor,
                lookahead: Tensor | None = None) -> tuple[Tensor, ...]:
        """-> hidden_states (B, len(layers), C, D), then the next value of every state (``state_names`` order)."""
        model, chunk, left = self.model, self.chunk, self.left
        wave = torch.cat([fbank_overlap, audio], 1)
        x = model.fbank.logmel(wave).transpose(1, 2)[:, None]  # (B, 1, n_mels, F_new)
        x, cache1 = causal_conv(model.subsampler.conv1, x, subsampler_cache1)
        x, cache2 = causal_conv(model.subsampler.conv2, F.gelu(x), subsampler_cache2)
        x, pos = model.pos_encoder.stream(model.subsampler.project(F.gelu(x)), list(pos_cache.unbind(0)))
        rows = x if lookahead is None else torch.cat([lookahead, x], 1)[:, -(chunk + self.lookahead):]
        mask = self._mask(start_frame, valid_frames)
        cos_q, sin_q = self.cos[left:], self.sin[left:]
        hidden, kv, x = [rows[:, :chunk]], [], rows
        for i, block in enumerate(model.blocks):
            q, k, v = block.attn.heads_of(block.norm1(x))
            k = torch.cat([kv_cache[i, 0], k], 2)  # (B, H, L + C + R, hd)
            v = torch.cat([kv_cache[i, 1], v], 2)
            kv.append(torch.stack([k[:, :, chunk:left + chunk], v[:, :, chunk:left + chunk]]))  # last L main frames
            attended = block.attn.attend(apply_rotary(q, cos_q, sin_q), apply_rotary(k, self.cos, self.sin), v, mask)
            x = block.feed_forward(x + attended)
            hidden.append((model.final_norm(x) if i == len(model.blocks) - 1 else x)[:, :chunk])
        states = [wave[:, wave.shape[1] - FBANK_OVERLAP:], cache1, cache2, torch.stack(pos), torch.stack(kv)]
        if lookahead is not None:
            states.append(rows[:, chunk:])
        return (torch.stack([hidden[i] for i in self.layers], 1), *states)


class TorchStepRunner:
    """A ``StreamStep`` behind the numpy interface ``usad.streaming.FrameStream`` drives (as an ORT session)."""

    def __init__(self, step: StreamStep):
        self.step = step
        self.state_shapes = step.state_shapes()
        self.outputs = ("hidden_states", *(next_name(s) for s in step.state_names))

    @torch.inference_mode()
    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = CONTROL_INPUTS + self.step.state_names
        results = self.step(*(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in names))
        return {name: r.numpy() for name, r in zip(self.outputs, results)}
