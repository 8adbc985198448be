"""ATST-Frame (Li, Shao & Li, TASLP 2024), USAD's audio teacher: a ViT over 64-bin log-mel at 25 Hz.

Architecture and tensor names follow the public source, Audio-WestlakeU/audiossl
(methods/atstframe/audio_transformer.py, ``FrameAST_base``; the checkpoint holds it under
``model.teacher.encoder.``): 4-frame x 64-mel patches -> Linear -> D tokens at 25 Hz, learned
positions for 250 tokens (10 s), pre-LayerNorm blocks (qkv without bias, LayerNorm eps 1e-6) and one
final LayerNorm (``norm_frame``) that the official embedding applies to every block's output.

Front end (methods/atstframe/embedding.py): torchaudio ``MelSpectrogram(16000, n_fft=1024, hop 160,
f_min=60, f_max=7800, n_mels=64)`` (power, centred, reflect padding), ``AmplitudeToDB(top_db=80)``
and a min-max map of the training set's range to [-1, 1]. Longer audio runs in 1001-frame (10 s)
chunks as the official embedding code does. Every step is computed per clip (reflect padding at
the clip's own end, the 80 dB floor from its own frames, attention over its own tokens), so a
padded batch gives each clip what it gets alone.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from torch import Tensor, nn

from usad.config import SAMPLE_RATE
from usad.teachers.base import Teacher, TeacherError, TeacherOutput, check_features, frames_mask, load_checked

N_FFT, HOP, N_MELS, F_MIN, F_MAX = 1024, 160, 64, 60.0, 7800.0
TOP_DB, DB_MIN, DB_MAX = 80.0, -79.6482, 50.6842  # embedding.py: MinMax(min=-79.6482, max=50.6842)
PATCH_FRAMES = 4  # 100 Hz mel frames per token: 25 Hz
CHUNK_FRAMES = 1001  # 10 s, the length of the positional table
ARCHS = {"base": (768, 12, 12), "small": (384, 12, 6)}  # dim, depth, heads


def reflect_pad(waveforms: Tensor, lengths: Tensor, pad: int) -> Tensor:
    """(B, S) -> (B, S + 2 pad): each clip reflect-padded at its own start and end (torch's 'reflect',
    repeated for clips shorter than ``pad``), zeros after that."""
    b, s = waveforms.shape
    n = lengths[:, None].clamp(min=2)
    period = 2 * (n - 1)

    def reflect(p: Tensor) -> Tensor:
        q = p % period
        return torch.where(q < n, q, period - q)

    k = torch.arange(pad, device=waveforms.device)[None, :]
    valid = frames_mask(lengths, s)
    out = F.pad(waveforms * valid, (pad, pad))
    out[:, :pad] = waveforms.gather(1, reflect(k - pad).expand(b, -1))
    end = lengths[:, None] + k  # original positions just past each clip
    return out.scatter(1, end + pad, waveforms.gather(1, reflect(end)))


class AtstMel(nn.Module):
    """Waveforms (B, S) + lengths -> normalised log-mel (B, 64, F) and frames (B,) = S // 160 + 1."""

    def __init__(self):
        super().__init__()
        from transformers.audio_utils import mel_filter_bank  # torchaudio's melscale_fbanks, without torchaudio

        banks = mel_filter_bank(num_frequency_bins=N_FFT // 2 + 1, num_mel_filters=N_MELS, min_frequency=F_MIN,
                                max_frequency=F_MAX, sampling_rate=SAMPLE_RATE, norm=None, mel_scale="htk")
        self.register_buffer("mel_banks", torch.from_numpy(banks).float().T, persistent=False)  # (64, 513)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def forward(self, waveforms: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        with torch.autocast(waveforms.device.type, enabled=False):  # power spectra need float32's range
            padded = reflect_pad(waveforms.float(), lengths, N_FFT // 2)
            spec = torch.stft(padded, N_FFT, HOP, window=self.window, center=False, return_complex=True)
            db = 10 * torch.log10((self.mel_banks @ spec.abs().square()).clamp(min=1e-10))
        frames = lengths // HOP + 1
        valid = frames_mask(frames, db.shape[-1])[:, None, :]
        peak = db.masked_fill(~valid, -torch.inf).amax(dim=(1, 2), keepdim=True)
        db = torch.maximum(db, peak - TOP_DB)
        return ((db - DB_MIN) / (DB_MAX - DB_MIN) * 2 - 1) * valid, frames


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Mlp(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """x + attn(LN(x)), then x + mlp(LN(x)); returns the new x and the mlp output (the FFN feature)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn, self.mlp = Attention(dim, heads), Mlp(dim)

    def forward(self, x: Tensor, key_mask: Tensor) -> tuple[Tensor, Tensor]:
        x = x + self.attn(self.norm1(x), key_mask)
        ffn = self.mlp(self.norm2(x))
        return x + ffn, ffn


class PatchEmbed(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.patch_embed = nn.Linear(N_MELS * PATCH_FRAMES, dim)


class FrameAST(nn.Module):
    """Patches (N, T, 256) + valid (N, T) -> depth + 1 layers (N, T, D). Tensor names as the checkpoint's."""

    def __init__(self, dim: int = 768, depth: int = 12, heads: int = 12):
        super().__init__()
        self.patch_embed = PatchEmbed(dim)
        self.mask_embed = nn.Parameter(torch.zeros(1, 1, dim))  # used in pre-training only; kept for the keys
        self.pos_embed = nn.Parameter(torch.zeros(1, CHUNK_FRAMES // PATCH_FRAMES + 1, dim))  # slot 0 unused
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm_frame = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, patches: Tensor, valid: Tensor, features: str = "hidden") -> list[Tensor]:
        x = self.patch_embed.patch_embed(patches) + self.pos_embed[:, 1:patches.shape[1] + 1]
        # Keys of padding are masked; a chunk with no real token (a short clip's empty chunks)
        # attends to everything instead of to nothing, and is masked out afterwards.
        key_mask = (valid | ~valid.any(1, keepdim=True))[:, None, None, :]
        layers = [x]
        for block in self.blocks:
            x, ffn = block(x, key_mask)
            layers.append(self.norm_frame(x) if features == "hidden" else ffn)
        return layers


def checkpoint_arch(path: Path) -> str:
    """'base' or 'small', from the width of the positional table in a converted safetensors file."""
    try:
        with safe_open(path, "pt") as f:
            dim = f.get_slice("pos_embed").get_shape()[-1]
    except (SafetensorError, OSError) as err:
        raise TeacherError(f"{path}: unreadable ATST-Frame weights ({err})") from err
    except KeyError:
        raise TeacherError(f"{path}: no pos_embed tensor; not an ATST-Frame checkpoint "
                           "(convert one with `usad teachers convert atst-frame CKPT`)") from None
    archs = {d: name for name, (d, _, _) in ARCHS.items()}
    if dim not in archs:
        raise TeacherError(f"{path}: ATST-Frame width {dim}; known widths {sorted(archs)}")
    return archs[dim]


class AtstFrameTeacher(Teacher):
    """Layers: the tokens + positions, then every block (``features``: hidden or ffn), 25 Hz."""

    frame_rate = SAMPLE_RATE / HOP / PATCH_FRAMES
    float32_modules = ("mel",)

    def __init__(self, path: str | Path, features: str = "hidden"):
        super().__init__()
        path = Path(path)
        weights = path / "model.safetensors" if path.is_dir() else path
        if not weights.is_file():
            raise TeacherError(f"{weights}: teacher weight file not found "
                               "(run `usad teachers convert atst-frame CKPT --out DIR`)")
        self.features = check_features(features)
        self.mel = AtstMel()
        self.encoder = FrameAST(*ARCHS[checkpoint_arch(weights)])
        load_checked(weights, self.encoder)

    @torch.no_grad()
    def forward(self, waveforms: Tensor, lengths: Tensor) -> TeacherOutput:
        mel, frames = self.mel(waveforms, lengths)  # (B, 64, F) float32
        b, _, total = mel.shape
        # 1001-frame (10 s) chunks, each chunk's last frame falling off as in the official code; a
        # batch of shorter clips is one chunk of its own length.
        width = min(total, CHUNK_FRAMES)
        chunks, tokens = -(-total // width), width // PATCH_FRAMES
        mel = F.pad(mel, (0, chunks * width - total)).reshape(b, N_MELS, chunks, width)
        patches = mel[..., :tokens * PATCH_FRAMES].reshape(b, N_MELS, chunks, tokens, PATCH_FRAMES)
        patches = patches.permute(0, 2, 3, 1, 4).reshape(b * chunks, tokens, N_MELS * PATCH_FRAMES)  # mel-major
        starts = width * torch.arange(chunks, device=frames.device)
        chunk_frames = (frames[:, None] - starts).clamp(0, width)
        chunk_tokens = chunk_frames // PATCH_FRAMES  # (B, chunks)
        valid = frames_mask(chunk_tokens.reshape(-1), tokens)
        layers = self.encoder(patches.to(self.dtype), valid, self.features)
        layers = [x.reshape(b, chunks * tokens, -1) for x in layers]
        return TeacherOutput(layers, self.frame_rate, frames_mask(chunk_tokens.sum(1), chunks * tokens))
