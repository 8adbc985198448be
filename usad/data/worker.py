"""The corpus worker: ``run_job`` turns one job (a small picklable record) into 16 kHz clips of at
most ``MAX_CLIP_SECONDS``, already encoded as Ogg Opus at the domain's bitrate, so decoding,
synthesis and encoding all run in the worker pool.
"""

from __future__ import annotations

import io
import subprocess
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from usad.audio import SAMPLE_RATE, AudioError, check_waveform, load_audio, to_mono_16k
from usad.data.shards import encode_opus
from usad.data.sources import open_archive
from usad.data.splits import stable_fraction
from usad.data.synth import render_notes, speak

MAX_CLIP_SECONDS = 10.0
MIN_TAIL_SECONDS = 1.0
SILENCE_RMS = 1e-4
SCENE_SECONDS = 10.0
MAX_FILE_SECONDS = 1800.0

# General MIDI programs that sound like their family, for score renders (never drums: channel 9 unused).
SCORE_PROGRAMS = (0, 1, 4, 6, 11, 19, 21, 24, 25, 32, 40, 41, 42, 43, 46, 48, 52, 56, 57, 60, 65, 68, 71,
                  73, 74, 79)


@dataclass(frozen=True)
class Job:
    source: str
    domain: str
    kind: str  # file | tts | render | scene
    spec: tuple  # kind-specific, picklable; a file is (path, zip member or "")
    tokens: tuple[str, ...]


@dataclass
class Result:
    clips: list[tuple[bytes, float, dict]]  # (opus, seconds, extra meta)
    error: str | None = None


@lru_cache(maxsize=256)
def load_source(path: str, member: str = "") -> np.ndarray:
    """(S,) float32 16 kHz of a file, or of one member of a zip archive (game data packs)."""
    if not member:
        return load_audio(path, max_seconds=MAX_FILE_SECONDS)
    name = f"{path}:{member}"
    try:
        data, rate = sf.read(io.BytesIO(open_archive(path).read(member)), dtype="float32", always_2d=True)
    except (zipfile.BadZipFile, KeyError, sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(f"{name}: unreadable audio ({err})") from err
    if data.shape[0] > MAX_FILE_SECONDS * rate:
        raise AudioError(f"{name}: longer than the {MAX_FILE_SECONDS:.0f} s limit")
    return check_waveform(to_mono_16k(data, rate), name)


def _chunks(audio: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """Cut into <= MAX_CLIP_SECONDS pieces; drop short tails of long files and silent pieces."""
    size = int(MAX_CLIP_SECONDS * SAMPLE_RATE)
    if audio.size <= size:
        pieces = [(0.0, audio)]
    else:
        pieces = [(start / SAMPLE_RATE, audio[start:start + size]) for start in range(0, audio.size, size)]
        pieces = [(t, p) for t, p in pieces if p.size >= MIN_TAIL_SECONDS * SAMPLE_RATE]
    return [(t, p) for t, p in pieces if float(np.sqrt(np.mean(p.astype(np.float64) ** 2))) > SILENCE_RMS]


def _peak_safe(audio: np.ndarray) -> np.ndarray:
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return (audio * (0.95 / peak)).astype(np.float32) if peak > 0.95 else audio.astype(np.float32)


def _encode(audio: np.ndarray, extra: dict, kbps: float | None) -> list[tuple[bytes, float, dict]]:
    return [(encode_opus(_peak_safe(piece), kbps), piece.size / SAMPLE_RATE, {**extra, "offset": round(t, 3)})
            for t, piece in _chunks(audio)]


def _scene(spec: tuple) -> np.ndarray:
    """A 10 s scene of real sound events at random times, gains and speeds (all from the seed)."""
    seed, sources = spec  # sources: (path, zip member or "") per event
    rng = np.random.default_rng(seed)
    total = int(SCENE_SECONDS * SAMPLE_RATE)
    mix = np.zeros(total, np.float32)
    for i, (path, member) in enumerate(sources):
        event = load_source(path, member)
        speed = float(rng.uniform(0.8, 1.25))
        event = soxr.resample(event, SAMPLE_RATE, int(SAMPLE_RATE / speed)).astype(np.float32)[:total]
        gain = 10 ** (rng.uniform(-18, 0) / 20) * (0.3 if i == 0 else 1.0)  # first event is a quiet bed
        peak = float(np.abs(event).max()) or 1.0
        if i == 0:  # loop the bed under the whole scene
            event = np.resize(event, total)
        start = int(rng.integers(0, total - event.size + 1))
        mix[start:start + event.size] += event * (gain / peak)
    return mix


@lru_cache(maxsize=8)
def _parse_score(path: str):
    from music21 import converter  # heavy import, only in workers that render

    return converter.parse(path)


def _score_events(spec: tuple) -> list[tuple[float, float, int, int, int, int]]:
    """Notes of a music21 score as (onset_s, dur_s, channel, program, pitch, velocity)."""
    path, seed, max_seconds = spec[0], spec[2], spec[3]
    rng = np.random.default_rng(seed)
    score = _parse_score(path)
    seconds_per_quarter = 60.0 / float(rng.uniform(70, 130))
    parts = list(getattr(score, "parts", [])) or [score]
    events = []
    for channel, part in enumerate(parts[:8]):
        program = int(SCORE_PROGRAMS[rng.integers(len(SCORE_PROGRAMS))])
        velocity = int(rng.integers(60, 110))
        for element in part.flatten().notes:
            onset = float(element.offset) * seconds_per_quarter
            duration = max(float(element.quarterLength), 0.25) * seconds_per_quarter
            if onset >= max_seconds:
                break
            for pitch in getattr(element, "pitches", ()):
                if 0 <= pitch.midi < 128:
                    events.append((onset, duration, channel, program, int(pitch.midi), velocity))
    return events


def run_job(job: Job, kbps: dict[str, float] | None = None) -> Result:
    """Make one job's clips, encoded at ``kbps[job.domain]`` (libsndfile's default bitrate when absent).
    Bad or missing source material becomes ``Result.error``, never a crash."""
    rate_kbps = (kbps or {}).get(job.domain)
    try:
        if job.kind == "file":
            path, member = job.spec
            extra = {"file": Path(path).name} | ({"member": member} if member else {})
            return Result(_encode(load_source(path, member), extra, rate_kbps))
        if job.kind == "tts":
            engine, voice, rate, text = job.spec
            audio = speak(text, engine, voice, rate)
            return Result(_encode(audio, {"engine": engine, "voice": voice, "text": text}, rate_kbps))
        if job.kind == "render":
            path, soundfont = job.spec[0], job.spec[1]
            events = _score_events(job.spec)
            if not events:
                raise AudioError(f"{path}: score has no notes")
            reverb = stable_fraction(path + soundfont) < 0.5
            audio = render_notes(events, Path(soundfont), reverb=reverb)
            return Result(_encode(audio, {"score": Path(path).name, "soundfont": Path(soundfont).name}, rate_kbps))
        if job.kind == "scene":
            return Result(_encode(_scene(job.spec), {"events": len(job.spec[1])}, rate_kbps))
        raise ValueError(f"unknown job kind {job.kind!r}")
    except (AudioError, OSError, subprocess.SubprocessError, ValueError, RuntimeError) as err:
        return Result([], f"{job.source}: {err}")
    except Exception as err:  # noqa: BLE001 - music21 raises many private types on odd scores
        return Result([], f"{job.source}: {type(err).__name__}: {err}")
