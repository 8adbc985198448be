"""aiSFX sound-effects teacher (Pasquale, ISMIR 2022): a 4-block 2-D CNN over 96-bin log-mel blocks.

The package analyses 44.1 kHz audio with 2048-sample Hann windows and a 1024 hop. Our input is
16 kHz, so resampling up would only add empty bands above 8 kHz: we analyse at 16 kHz with windows
of the same duration (743 samples, 21.53 Hz bins like 2048 at 44.1 kHz), a 372-sample hop, and the
same HTK mel filters on that bin grid, with the power rescaled to the 44.1 kHz window length.
Each ~2.3 s block (100 frames, hop 50) gives one vector per block: block k's feature map, mean over
frequency and max over time, as the package's embedding does for the last block.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from usad.config import SAMPLE_RATE
from usad.teachers.base import Teacher, TeacherOutput, frames_mask, load_checked

N_FFT, HOP, N_MELS = 743, 372, 96  # 16 kHz equivalents of 2048 / 1024 at 44.1 kHz
BLOCK, BLOCK_HOP = 100, 50
SPEC_MAX = 9.457798957824707  # the package's 'original' min-max normalisation
POWER_SCALE = (44_100 / SAMPLE_RATE) ** 2


def aisfx_mel_filters() -> Tensor:
    """(N_FFT // 2 + 1, 96) HTK mel filters of the 44.1 kHz / 2048 grid, each summing to 1 (librosa norm=1)."""
    from transformers.audio_utils import mel_filter_bank

    full = mel_filter_bank(num_frequency_bins=1025, num_mel_filters=N_MELS, min_frequency=0.0,
                           max_frequency=22_050.0, sampling_rate=44_100, norm=None, mel_scale="htk")
    full = full / np.maximum(full.sum(axis=0, keepdims=True), 1e-12)
    return torch.from_numpy(full[: N_FFT // 2 + 1].astype(np.float32))


class ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn1, self.bn2 = nn.BatchNorm2d(cout), nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class EmbeddingNet(nn.Module):
    """The package's ``EmbeddingNet('max', 3, 1, 64)``: (N, frames, mels) -> per-block maps."""

    def __init__(self, width: int = 64):
        super().__init__()
        widths = [1, width, width * 2, width * 4, width * 8]
        for i in range(4):
            setattr(self, f"conv_block{i + 1}", ConvBlock(widths[i], widths[i + 1]))

    def forward(self, x: Tensor) -> list[Tensor]:
        x, outs = x[:, None], []
        for i in range(4):
            x = getattr(self, f"conv_block{i + 1}")(x)
            outs.append(x.mean(dim=3).amax(dim=2))  # (N, C): mean over mels, max over time
            if i < 3:
                x = F.max_pool2d(x, 2)
        return outs


class AisfxTeacher(Teacher):
    """Layers: the 4 conv blocks' vectors (64, 128, 256, 512-d) per ~2.3 s block, hop ~1.16 s."""

    frame_rate = SAMPLE_RATE / (HOP * BLOCK_HOP)

    def __init__(self, path: str | Path):
        super().__init__()
        path = Path(path)
        self.net = EmbeddingNet()
        load_checked(path / "model.safetensors" if path.is_dir() else path, self.net, prefix="embedding_net.")
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.register_buffer("mel_filters", aisfx_mel_filters(), persistent=False)

    def spectrogram(self, waveforms: Tensor, lengths: Tensor) -> Tensor:
        """(B, S) -> normalised log-mel (B, frames, 96); each clip peak-normalised like the package."""
        wave = waveforms.float()
        valid = frames_mask(lengths, wave.shape[1])
        peak = wave.abs().masked_fill(~valid, 0).amax(dim=1, keepdim=True)
        wave = wave / torch.where(peak > 0, peak, torch.ones_like(peak))
        stft = torch.stft(wave, N_FFT, HOP, window=self.window, pad_mode="constant", return_complex=True)
        mel = (stft.abs() ** 2 * POWER_SCALE).transpose(1, 2) @ self.mel_filters
        return torch.log10(mel * 10_000.0 + 1.0) / SPEC_MAX

    def forward(self, waveforms: Tensor, lengths: Tensor) -> TeacherOutput:
        with torch.no_grad():
            spec = self.spectrogram(waveforms, lengths)
            if spec.shape[1] < BLOCK:
                spec = F.pad(spec, (0, 0, 0, BLOCK - spec.shape[1]))
            blocks = spec.unfold(1, BLOCK, BLOCK_HOP).transpose(2, 3)  # (B, N, BLOCK, 96)
            b, n = blocks.shape[:2]
            outs = self.net(blocks.reshape(b * n, BLOCK, N_MELS).to(self.dtype))
            layers = [o.reshape(b, n, -1) for o in outs]
            frames = ((lengths // HOP + 1 - BLOCK) // BLOCK_HOP + 1).clamp(min=1)
            return TeacherOutput(layers, self.frame_rate, frames_mask(frames, n))
