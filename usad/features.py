"""Kaldi-compatible log-mel filterbank in plain, batched, ONNX-exportable torch.

Matches ``torchaudio.compliance.kaldi.fbank(wave, num_mel_bins=128, frame_length=25,
frame_shift=10, htk_compat=True, use_energy=False, dither=0, window_type="hanning",
sample_frequency=16000)`` on each clip after per-utterance mean removal, then USAD's
normalisation ``(x + 4.268) / (2 * 4.569)``.

Everything Kaldi does to a frame before the power spectrum is linear in that frame: per-frame DC
removal, pre-emphasis, the Hann window and the DFT. They are folded into one float64 matrix and
applied as a strided Conv1d (kernel 400, stride 160), which every ONNX target supports; the
``torch.stft`` route exports as the ONNX STFT op, which ORT runs slowly and TensorRT not everywhere.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from usad.config import FRAME_LENGTH, FRAME_SHIFT, SAMPLE_RATE, fbank_frames

FFT_SIZE = 512  # Kaldi pads the frame to the next power of two
PREEMPHASIS = 0.97
LOW_FREQ = 20.0
LOG_FLOOR = torch.finfo(torch.float32).eps
NORM_MEAN = -4.268
NORM_STD = 4.569


def _frame_to_spectrum_basis(window_type: str = "hanning") -> Tensor:
    """(2 * (FFT_SIZE // 2 + 1), FRAME_LENGTH) float64: rows are the real then imaginary DFT
    coefficients of the DC-removed, pre-emphasised, windowed frame ("hanning" or Kaldi's "povey")."""
    n = FRAME_LENGTH
    identity = torch.eye(n, dtype=torch.float64)
    remove_dc = identity - 1.0 / n
    # Kaldi pre-emphasis: y[0] = x[0] - 0.97 x[0]; y[i] = x[i] - 0.97 x[i-1].
    preemphasis = identity.clone()
    preemphasis[1:, :-1] -= PREEMPHASIS * identity[1:, 1:]
    preemphasis[0, 0] -= PREEMPHASIS
    window = torch.hann_window(n, periodic=False, dtype=torch.float64)
    if window_type == "povey":  # Kaldi's default window, used by BEATs: Hann to the power 0.85
        window = window.pow(0.85)
    frame_op = window[:, None] * (preemphasis @ remove_dc)  # (n, n): frame -> windowed frame
    bins = torch.arange(FFT_SIZE // 2 + 1, dtype=torch.float64)
    angle = 2 * math.pi * bins[:, None] * torch.arange(n, dtype=torch.float64)[None, :] / FFT_SIZE
    dft = torch.cat([torch.cos(angle), -torch.sin(angle)])  # zero padding to 512 drops out
    return dft @ frame_op


def _mel(freq: Tensor) -> Tensor:
    return 1127.0 * torch.log1p(freq / 700.0)


def kaldi_mel_banks(n_mels: int, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """(n_mels, FFT_SIZE // 2 + 1) float64 triangular filters as in Kaldi's MelBanks (no VTLN)."""
    n_fft_bins = FFT_SIZE // 2
    mel_low, mel_high = _mel(torch.tensor(LOW_FREQ)), _mel(torch.tensor(sample_rate / 2))
    delta = (mel_high - mel_low) / (n_mels + 1)
    index = torch.arange(n_mels, dtype=torch.float64)[:, None]
    left, center, right = (mel_low + (index + k) * delta for k in (0, 1, 2))
    mel = _mel(sample_rate / FFT_SIZE * torch.arange(n_fft_bins, dtype=torch.float64))[None, :]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return torch.nn.functional.pad(banks, (0, 1))  # Kaldi ignores the Nyquist bin


class KaldiFbank(nn.Module):
    """Waveforms (B, S) at 16 kHz + lengths (B,) -> normalised log-mel (B, T, n_mels) + frames (B,).

    Frames past a clip's own length are zero, so a padded batch gives each clip what it gets alone.
    The defaults are USAD's; teachers with other Kaldi settings (BEATs: povey window, no utterance
    mean removal, its own normalisation) pass theirs.
    """

    def __init__(self, n_mels: int = 128, window_type: str = "hanning", remove_utterance_mean: bool = True,
                 norm_mean: float = NORM_MEAN, norm_std: float = NORM_STD):
        super().__init__()
        self.remove_utterance_mean, self.norm_mean, self.norm_std = remove_utterance_mean, norm_mean, norm_std
        basis = _frame_to_spectrum_basis(window_type)
        self.register_buffer("spectrum_basis", basis.float()[:, None, :], persistent=False)
        self.register_buffer("mel_banks", kaldi_mel_banks(n_mels).float().T, persistent=False)

    def forward(self, waveforms: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        # Under bf16 autocast the DFT conv and the log would run in bf16: the power spectrum's
        # dynamic range needs float32, so the fbank always computes in float32.
        if torch.is_autocast_enabled(waveforms.device.type):
            with torch.autocast(waveforms.device.type, enabled=False):
                return self.forward(waveforms.float(), lengths)
        samples = torch.arange(waveforms.shape[1], device=waveforms.device)
        valid = samples[None, :] < lengths[:, None]
        valid_f = valid.to(waveforms.dtype)
        centered = waveforms * valid_f
        if self.remove_utterance_mean:
            mean = centered.sum(1, keepdim=True) / lengths[:, None].clamp(min=1).to(waveforms.dtype)
            centered = (waveforms - mean) * valid_f
        spectrum = nn.functional.conv1d(centered[:, None, :], self.spectrum_basis, stride=FRAME_SHIFT)
        real, imag = spectrum.transpose(1, 2).chunk(2, dim=-1)  # (B, T, 257) each
        power = real * real + imag * imag
        logmel = torch.log(torch.clamp(power @ self.mel_banks, min=LOG_FLOOR))
        features = (logmel - self.norm_mean) / (2 * self.norm_std)
        frames = fbank_frames(lengths)
        frame_valid = torch.arange(features.shape[1], device=features.device)[None, :] < frames[:, None]
        return features * frame_valid[..., None].to(features.dtype), frames
