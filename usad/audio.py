"""Audio input: any file soundfile reads, any rate and channel count -> 16 kHz mono float32.

numpy + soundfile + soxr only, so the torch-free runtime shares it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from usad.config import FRAME_LENGTH, SAMPLE_RATE
from usad.errors import UsadError

MIN_SAMPLES = FRAME_LENGTH  # one fbank window; shorter non-empty clips are zero-padded to it


class AudioError(UsadError, ValueError):
    """A file that cannot become a usable 16 kHz waveform; the message names the file."""


def to_mono_16k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """(samples,) or (samples, channels) at any rate -> (samples,) float32 at 16 kHz."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if sample_rate != SAMPLE_RATE:
        audio = soxr.resample(audio, sample_rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    return audio


def check_waveform(audio: np.ndarray, name: str) -> np.ndarray:
    """Refuse empty or non-finite audio; pad clips shorter than one frame."""
    if audio.size == 0:
        raise AudioError(f"{name}: empty audio (0 samples)")
    if not np.isfinite(audio).all():
        bad = int((~np.isfinite(audio)).sum())
        raise AudioError(f"{name}: {bad} NaN/inf samples")
    if audio.size < MIN_SAMPLES:
        audio = np.pad(audio, (0, MIN_SAMPLES - audio.size))
    return audio


def _open(path: Path) -> sf.SoundFile:
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        return sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(f"{path}: unreadable audio ({err})") from err


def audio_duration(path: str | Path) -> float:
    """Seconds of audio in a file, read from its header."""
    with _open(Path(path)) as f:
        return f.frames / f.samplerate


def load_audio(path: str | Path, max_seconds: float | None = None) -> np.ndarray:
    """Whole file as (samples,) float32 mono at 16 kHz. ``max_seconds`` guards memory."""
    path = Path(path)
    with _open(path) as f:
        if max_seconds is not None and f.frames > max_seconds * f.samplerate:
            raise AudioError(
                f"{path}: {f.frames / f.samplerate:.0f} s is longer than the {max_seconds:.0f} s limit; "
                "stream it with iter_audio_blocks"
            )
        try:
            data = f.read(dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise AudioError(f"{path}: unreadable audio ({err})") from err
        rate = f.samplerate
    return check_waveform(to_mono_16k(data, rate), str(path))


def iter_audio_blocks(path: str | Path, block_seconds: float = 30.0) -> Iterator[np.ndarray]:
    """Stream a file as consecutive 16 kHz mono blocks of about ``block_seconds``, in bounded memory."""
    path = Path(path)
    with _open(path) as f:
        rate = f.samplerate
        resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ") \
            if rate != SAMPLE_RATE else None
        block = int(block_seconds * rate)
        total = 0
        while True:
            try:
                data = f.read(block, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as err:
                raise AudioError(f"{path}: unreadable audio ({err})") from err
            last = len(data) < block
            mono = data.mean(axis=1)
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=last)
            if not np.isfinite(mono).all():
                raise AudioError(f"{path}: NaN/inf samples near {total / SAMPLE_RATE:.1f} s")
            if mono.size:
                total += mono.size
                yield mono.astype(np.float32, copy=False)
            if last:
                break
    if total == 0:
        raise AudioError(f"{path}: empty audio (0 samples)")
