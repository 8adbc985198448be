"""Real audio for calibration and for the accuracy guard: fixed-length crops cut from a directory of
audio files or from corpus shards (tar files of audio members), split by file so the guard's
held-out crops never share a recording with the calibration crops."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from usad.audio import AudioError, load_audio, to_mono_16k
from usad.config import SAMPLE_RATE
from usad.errors import UsadError

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au"}


class CalibrationError(UsadError, ValueError):
    """No usable calibration audio; the message says what to pass."""


@dataclass
class AudioSource:
    """One recording: a file, or a member of a tar shard."""

    path: Path
    member: str | None = None

    @property
    def name(self) -> str:
        return f"{self.path}:{self.member}" if self.member else str(self.path)

    def load(self) -> np.ndarray:
        if self.member is None:
            return load_audio(self.path)
        with tarfile.open(self.path) as tar:
            data = tar.extractfile(self.member).read()
        try:
            audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise AudioError(f"{self.name}: unreadable audio ({err})") from err
        return to_mono_16k(audio, rate)


def list_sources(paths: list[str | Path]) -> list[AudioSource]:
    """Audio files under directories, audio files named directly, and audio members of .tar shards."""
    sources: list[AudioSource] = []
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            files = [path]
        else:
            raise CalibrationError(f"{path}: calibration path does not exist")
        for file in files:
            if file.suffix.lower() in AUDIO_SUFFIXES:
                sources.append(AudioSource(file))
            elif file.name.endswith(".tar"):
                with tarfile.open(file) as tar:
                    sources += [AudioSource(file, m.name) for m in tar.getmembers()
                                if m.isfile() and Path(m.name).suffix.lower() in AUDIO_SUFFIXES]
    if not sources:
        raise CalibrationError(f"no audio files (or .tar shards of audio) under {[str(p) for p in paths]}")
    return sources


def _stream(sources: list[AudioSource]) -> Iterator[np.ndarray]:
    for source in sources:
        try:
            audio = source.load()
        except AudioError:
            continue  # one bad file must not stop a calibration over thousands
        if audio.size and np.abs(audio).max() > 0:
            yield audio


def cut_crops(sources: list[AudioSource], seconds: float, count: int) -> list[np.ndarray]:
    """``count`` crops of exactly ``seconds``, concatenating consecutive short recordings."""
    size = int(round(seconds * SAMPLE_RATE))
    crops, buffer = [], np.zeros(0, dtype=np.float32)
    for audio in _stream(sources):
        buffer = np.concatenate([buffer, audio])
        while buffer.size >= size and len(crops) < count:
            crops.append(buffer[:size].copy())
            buffer = buffer[size:]
        if len(crops) == count:
            return crops
    if not crops:
        raise CalibrationError(f"not {seconds:g} s of readable audio in {len(sources)} files")
    return crops


def calibration_and_heldout(paths: list[str | Path], seconds: float = 5.0, calibration_count: int = 32,
                            heldout_count: int = 12, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Crops for calibration and for the guard, from disjoint shuffled halves of the recordings."""
    sources = list_sources(paths)
    order = np.random.default_rng(seed).permutation(len(sources))
    shuffled = [sources[i] for i in order]
    if len(shuffled) < 2:
        raise CalibrationError("calibration needs at least two recordings (one held out for the accuracy guard)")
    half = len(shuffled) // 2
    return cut_crops(shuffled[:half], seconds, calibration_count), cut_crops(shuffled[half:], seconds, heldout_count)
