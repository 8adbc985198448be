"""One config per encoder, and the registry of named presets (``create_model("usad-tiny")``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

SAMPLE_RATE = 16_000  # every stage works on 16 kHz mono
FRAME_LENGTH = 400  # one 25 ms fbank window; the shortest audio an encoder takes
FRAME_SHIFT = 160  # the fbank hop, 10 ms: the fbank runs at 100 Hz
FORMAT_VERSION = 1


def fbank_frames(samples):
    """Kaldi fbank frames (snip_edges) of ``samples``: an int, numpy array or torch tensor; 0 below one window."""
    frames = (samples - FRAME_LENGTH) // FRAME_SHIFT + 1
    return frames * (frames > 0)


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture and front-end constants of a USAD encoder.

    The paper fixes width, depth and heads of S/B/L, the 128-bin fbank, a 64-channel stride-2 conv
    subsampler and a convolutional positional encoder. Where it is silent we chose (see README):
    the subsampler keeps the frequency axis at full resolution with two valid 5-tap convolutions
    (128 -> 120 bins), FFN width 4x, pre-LayerNorm blocks with a final LayerNorm, and rotary
    embeddings as the relative position information inside attention.
    """

    name: str = "custom"
    dim: int = 384
    depth: int = 12
    heads: int = 6
    ffn_ratio: float = 4.0
    n_mels: int = 128
    subsampler_channels: int = 64
    subsampler_freq_kernel: int = 5
    subsampler_freq_stride: int = 1
    frame_rate: int = 50
    pos_conv_layers: int = 5
    pos_conv_kernel: int = 19
    pos_conv_groups: int = 16
    rope_base: float = 10_000.0
    dropout: float = 0.0
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by heads {self.heads}")
        if (self.dim // self.heads) % 2:
            raise ValueError("rotary embeddings need an even head dimension")
        if self.frame_rate not in (50, 25):
            raise ValueError(f"frame_rate must be 50 or 25 Hz, got {self.frame_rate}")
        if self.dim % self.pos_conv_groups:
            raise ValueError(f"dim {self.dim} is not divisible by pos_conv_groups {self.pos_conv_groups}")

    @property
    def time_stride(self) -> int:
        """Fbank frames (100 Hz) per encoder frame."""
        return SAMPLE_RATE // FRAME_SHIFT // self.frame_rate

    @property
    def subsampler_strides(self) -> tuple[int, int]:
        """Time strides of the subsampler's two convolutions (kernel 3, padding 1)."""
        return 2, self.time_stride // 2

    @property
    def samples_per_frame(self) -> int:
        return SAMPLE_RATE // self.frame_rate

    def num_frames(self, samples):
        """Encoder frames for clips of ``samples`` (int, numpy array or torch tensor)."""
        frames = fbank_frames(samples)
        for stride in self.subsampler_strides:
            frames = (frames - 1) // stride + 1
        return frames * (frames > 0)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EncoderConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}")
        return cls(**data)


_PRESETS: dict[str, EncoderConfig] = {
    # The paper's students.
    "usad-small": EncoderConfig(name="usad-small", dim=384, depth=12, heads=6),
    "usad-base": EncoderConfig(name="usad-base", dim=768, depth=12, heads=12),
    "usad-large": EncoderConfig(name="usad-large", dim=1024, depth=24, heads=16),
    # Edge presets for CPU boards: a lighter subsampler (frequency stride 2, 32 channels)
    # because at this width the full-resolution one would cost as much as the Transformer.
    "usad-tiny": EncoderConfig(
        name="usad-tiny", dim=256, depth=6, heads=4, subsampler_channels=32, subsampler_freq_stride=2
    ),
    "usad-tiny-25hz": EncoderConfig(
        name="usad-tiny-25hz", dim=256, depth=6, heads=4, subsampler_channels=32,
        subsampler_freq_stride=2, frame_rate=25,
    ),
    "usad-nano": EncoderConfig(
        name="usad-nano", dim=192, depth=4, heads=3, subsampler_channels=16, subsampler_freq_stride=2,
        pos_conv_layers=2,
    ),
    "usad-nano-25hz": EncoderConfig(
        name="usad-nano-25hz", dim=192, depth=4, heads=3, subsampler_channels=16,
        subsampler_freq_stride=2, pos_conv_layers=2, frame_rate=25,
    ),
}


_RATE_SUFFIX = {50: "", 25: "-25hz"}  # how the registry names a preset's frame-rate variants


def at_frame_rate(config: EncoderConfig, frame_rate: int) -> EncoderConfig:
    """``config`` at another frame rate, named as the registry names it: the registered preset of that
    architecture and rate when there is one (usad-tiny -> usad-tiny-25hz), else the name's rate suffix changed."""
    if frame_rate == config.frame_rate:
        return config
    if frame_rate not in _RATE_SUFFIX:
        raise ValueError(f"frame_rate must be one of {sorted(_RATE_SUFFIX)} Hz, got {frame_rate}")
    moved = dataclasses.replace(config, frame_rate=frame_rate)
    for preset in _PRESETS.values():
        if dataclasses.replace(preset, name=moved.name) == moved:
            return preset
    base = config.name.removesuffix(_RATE_SUFFIX[config.frame_rate])
    return dataclasses.replace(moved, name=base + _RATE_SUFFIX[frame_rate])


def list_presets() -> list[str]:
    return list(_PRESETS)


def get_preset(name: str, **overrides) -> EncoderConfig:
    if name not in _PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose from {', '.join(_PRESETS)}")
    config = _PRESETS[name]
    return dataclasses.replace(config, **overrides) if overrides else config
