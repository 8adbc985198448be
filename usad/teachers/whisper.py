"""Whisper encoder teacher (Hugging Face weights), run at the input's own length.

The HF encoder insists on 3000 mel frames (30 s). Self-attention has no mask there, so padding
changes the features a little, but running a 10 s crop as 30 s would triple the teacher's cost.
We slice the positional table to the input's length instead; ``tests/test_teachers_whisper.py``
measures how close that stays to the padded 30 s run.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from usad.config import SAMPLE_RATE
from usad.teachers.base import Teacher, TeacherError, TeacherOutput, frames_mask, load_checked

HOP = 160


class WhisperLogMel(nn.Module):
    """Batched torch equivalent of ``WhisperFeatureExtractor``: (B, S) float32 -> (B, n_mels, S // 160)."""

    def __init__(self, mel_filters: Tensor, n_fft: int = 400):
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("mel_filters", mel_filters.float(), persistent=False)  # (n_fft // 2 + 1, n_mels)

    def forward(self, waveforms: Tensor, lengths: Tensor) -> Tensor:
        stft = torch.stft(waveforms.float(), self.n_fft, HOP, window=self.window, return_complex=True)
        power = stft[..., :-1].abs() ** 2  # the extractor drops the last frame
        log_spec = (self.mel_filters.T @ power).clamp(min=1e-10).log10()
        # Dynamic range: 8 log10 units below each clip's loudest real frame.
        valid = frames_mask(lengths // HOP, log_spec.shape[-1])[:, None, :]
        peak = log_spec.masked_fill(~valid, -torch.inf).amax(dim=(1, 2), keepdim=True)
        return (torch.maximum(log_spec, peak - 8.0) + 4.0) / 4.0


class WhisperTeacher(Teacher):
    """Layers: conv-stem output + each Transformer layer (the last after the final LayerNorm), 50 Hz."""

    frame_rate = 50.0

    def __init__(self, path: str | Path):
        super().__init__()
        from transformers import WhisperConfig, WhisperFeatureExtractor
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        path = Path(path)
        if not (path / "config.json").is_file():
            raise TeacherError(f"{path}: not a Hugging Face Whisper directory (no config.json)")
        extractor = WhisperFeatureExtractor.from_pretrained(path)
        self.logmel = WhisperLogMel(torch.from_numpy(extractor.mel_filters), extractor.n_fft)
        # The encoder alone, checked tensor by tensor: equal to WhisperModel.from_pretrained(path).encoder
        # without building (and warning about) the decoder that this checkpoint does not carry.
        self.encoder = WhisperEncoder(WhisperConfig.from_pretrained(path)).float()
        load_checked(path / "model.safetensors", self.encoder, prefix="model.encoder.")
        self.max_frames = self.encoder.embed_positions.num_embeddings

    def encode(self, features: Tensor) -> list[Tensor]:
        """Log-mel (B, n_mels, F) -> hidden states (B, ceil(F / 2), D), positions sliced to length."""
        enc = self.encoder
        x = F.gelu(enc.conv1(features.to(self.dtype)))
        x = F.gelu(enc.conv2(x)).transpose(1, 2)
        if x.shape[1] > self.max_frames:
            raise ValueError(f"Whisper teacher takes at most {self.max_frames * 2 * HOP / SAMPLE_RATE:.0f} s of audio")
        x = x + enc.embed_positions.weight[: x.shape[1]]
        layers = [x]
        for i, layer in enumerate(enc.layers):
            x = layer(x, None)
            x = x[0] if isinstance(x, tuple) else x
            layers.append(enc.layer_norm(x) if i == len(enc.layers) - 1 else x)
        return layers

    @torch.no_grad()
    def forward(self, waveforms: Tensor, lengths: Tensor) -> TeacherOutput:
        features = self.logmel(waveforms, lengths)
        layers = self.encode(features)
        frames = (lengths // HOP + 1) // 2
        return TeacherOutput(layers, self.frame_rate, frames_mask(frames, layers[0].shape[1]))
