"""Audio of generated task rows: rendered notes (T5), speech-in-background scenes (T6), and the
one mixing rule of the suite (``mix_at_snr``: interference at a given SNR).

A row's ``spec`` says everything needed to rebuild its audio, so a manifest alone rebuilds it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from usad.audio import SAMPLE_RATE, load_audio
from usad.data import sources as src
from usad.data.synth import render_notes

NOTE_SECONDS = 1.0  # held note; the clip keeps another 0.5 s of release
NOTE_SPACING = 3.0  # long enough for every release to die before the next note
CLIP_SECONDS = 1.5
SCENE_SECONDS = 4.0
MAX_DRUM_SECONDS = 4.0

# T5 families: General MIDI programs per family and the MIDI pitches rendered for each.
FAMILIES = {
    "piano": ((0, 1, 2), range(48, 73, 2)),
    "organ": ((16, 19, 20), range(48, 73, 2)),
    "guitar": ((24, 25, 27), range(45, 70, 2)),
    "bass": ((32, 33, 34), range(28, 53, 2)),
    "strings": ((40, 41, 42, 48), range(48, 73, 2)),
    "brass": ((56, 57, 61), range(46, 71, 2)),
    "reed": ((64, 65, 71), range(50, 75, 2)),
    "pipe": ((73, 74, 75), range(60, 85, 2)),
}


def note_slots() -> list[tuple[str, int, int]]:
    """Every (family, program, pitch) of T5 in render order."""
    return [(family, program, pitch) for family, (programs, pitches) in FAMILIES.items()
            for program in programs for pitch in pitches]


@lru_cache(maxsize=4)
def rendered(soundfont: Path, events: tuple[tuple, ...]) -> np.ndarray:
    """Many notes of one soundfont in a single fluidsynth run (loading a compressed .sf3 costs
    seconds). events: (onset_s, duration_s, channel, program, pitch, velocity), as ``render_notes``."""
    return render_notes(list(events), soundfont)


def soundfont_path(paths: src.SourcePaths, soundfont: str) -> Path:
    fonts = src.soundfonts(paths)
    if soundfont not in fonts:
        raise FileNotFoundError(f"soundfont {soundfont} not installed (make system-deps)")
    return fonts[soundfont]


def cut(render: np.ndarray, start_s: float, seconds: float) -> np.ndarray:
    """``seconds`` of a render from ``start_s``, zero-padded past its end."""
    start, size = int(start_s * SAMPLE_RATE), int(seconds * SAMPLE_RATE)
    clip = render[start:start + size]
    return np.pad(clip, (0, size - clip.size)).astype(np.float32)


def note_audio(paths: src.SourcePaths, soundfont: str, family: str, program: int, pitch: int) -> np.ndarray:
    """One T5 note. Every note of the soundfont is rendered at once, one every NOTE_SPACING seconds."""
    events = tuple((k * NOTE_SPACING, NOTE_SECONDS, 0, p, n, 96) for k, (_, p, n) in enumerate(note_slots()))
    render = rendered(soundfont_path(paths, soundfont), events)
    return cut(render, note_slots().index((family, program, pitch)) * NOTE_SPACING, CLIP_SECONDS)


def trim_silence(audio: np.ndarray, floor_db: float = -35.0, hop: int = 160) -> np.ndarray:
    """Cut leading/trailing 10 ms hops quieter than ``floor_db`` below the loudest hop, so a placed
    utterance's extent is its speech."""
    frames = audio[: audio.size // hop * hop].reshape(-1, hop)
    if frames.size == 0:
        return audio
    level = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    active = np.flatnonzero(level > level.max() + floor_db)
    return audio[active[0] * hop:(active[-1] + 1) * hop]


def _noise(kind: str, size: int, seed: int) -> np.ndarray:
    white = np.random.default_rng(seed).standard_normal(size)
    if kind == "white":
        return white
    spectrum = np.fft.rfft(white)
    freqs = np.maximum(np.fft.rfftfreq(size), 1.0 / size)
    exponent = {"pink": 0.5, "brown": 1.0}[kind]
    return np.fft.irfft(spectrum / freqs ** exponent, n=size)


def scene_audio(paths: src.SourcePaths, spec: dict, load_item) -> np.ndarray:
    """Build a T6 scene. spec: {"background": {"kind", "seed" | "items"}, "speech": [[item_id,
    start_s], ...], "snr_db"}; ``load_item(id)`` returns a task row's source audio."""
    size = int(SCENE_SECONDS * SAMPLE_RATE)
    background = spec["background"]
    if background["kind"] in ("white", "pink", "brown"):
        bed = _noise(background["kind"], size, background["seed"])
    else:  # a sequence of real drum hits or rendered notes at given times
        bed = np.zeros(size)
        for item_id, start in background["items"]:
            event = load_item(item_id)[: size]
            at = int(start * SAMPLE_RATE)
            bed[at:at + event.size] += event[: size - at]
    speech = np.zeros(size)
    for item_id, start in spec["speech"]:
        utterance = trim_silence(load_item(item_id))
        at = int(start * SAMPLE_RATE)
        speech[at:at + utterance.size] += utterance[: size - at]
    speech_rms = np.sqrt(np.mean(speech[speech != 0] ** 2)) if speech.any() else 0.05
    bed_rms = np.sqrt(np.mean(bed ** 2)) or 1.0
    mix = speech + bed * (speech_rms / bed_rms) * 10 ** (-spec["snr_db"] / 20)
    peak = np.abs(mix).max()
    return (mix * (0.9 / peak if peak > 0.9 else 1.0)).astype(np.float32)


def mix_at_snr(signal: np.ndarray, interference: np.ndarray, snr_db: float) -> np.ndarray:
    """``signal + g * interference`` with g set so that the power ratio over the whole clip is
    ``snr_db``; the sum is scaled down (both parts alike, so the SNR holds) if it would clip.

    signal, interference: (S,) of one length. A silent interference leaves the signal as it is.
    """
    signal_power = float(np.mean(signal.astype(np.float64) ** 2))
    noise_power = float(np.mean(interference.astype(np.float64) ** 2))
    if noise_power == 0.0 or signal_power == 0.0:
        return signal.astype(np.float32)
    gain = np.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))
    mix = signal.astype(np.float64) + gain * interference
    peak = np.abs(mix).max()
    return (mix * (0.9 / peak if peak > 0.9 else 1.0)).astype(np.float32)


def utterance_seconds(audio: np.ndarray) -> float:
    return trim_silence(audio).size / SAMPLE_RATE


def load_file_item(paths: src.SourcePaths, item_id: str) -> np.ndarray:
    """Source audio of a file-backed task item id (fsdd:, gcompris:, drum:)."""
    kind, rest = item_id.split(":", 1)
    if kind == "fsdd":
        return load_audio(paths.fsdd / f"{rest}.flac")
    if kind == "gcompris":
        return load_audio(paths.gcompris / rest)
    if kind == "drum":
        kit, name = rest.split("/", 1)
        root = paths.sonic_pi if kit == "sonic-pi" else paths.drumkits / kit
        return load_audio(root / name)[: int(MAX_DRUM_SECONDS * SAMPLE_RATE)]
    raise ValueError(f"not a file item: {item_id}")
