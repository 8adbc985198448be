"""Synthetic audio from real material: fluidsynth renders of scores/notes with real-sample
soundfonts, and flite / espeak-ng speech of real text. Each call is one deterministic subprocess.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from usad.audio import SAMPLE_RATE, AudioError, to_mono_16k

FLITE_VOICES = ("awb", "rms", "slt", "kal16")
ESPEAK_VOICES = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-us-nyc")
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "croak")


def require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise RuntimeError(f"`{tool}` not found: install the Debian package `{package}` (make corpus-deps)")
    return path


def _read_wav(path: Path, what: str) -> np.ndarray:
    try:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(f"{what}: synthesis produced no readable audio ({err})") from err
    if audio.shape[0] == 0:
        raise AudioError(f"{what}: synthesis produced empty audio")
    return to_mono_16k(audio, rate)


def speak(text: str, engine: str, voice: str, rate_wpm: int = 160) -> np.ndarray:
    """(S,) float32 16 kHz speech of ``text``. engine: "flite" (voice in FLITE_VOICES) or
    "espeak-ng" (voice like "en-us+f3")."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        if engine == "flite":
            cmd = [require("flite", "flite"), "-voice", voice, "--setf",
                   f"duration_stretch={160 / rate_wpm:.3f}", "-t", text, "-o", str(out)]
        elif engine == "espeak-ng":
            cmd = [require("espeak-ng", "espeak-ng"), "-v", voice, "-s", str(rate_wpm), "-w", str(out), "--", text]
        else:
            raise ValueError(f"unknown speech engine {engine!r}")
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        return _read_wav(out, f"{engine}:{voice}")


def render_midi(midi: Path, soundfont: Path, reverb: bool = False, gain: float = 0.5) -> np.ndarray:
    """Render a MIDI file with fluidsynth at 16 kHz -> (S,) float32 mono."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "render.wav"
        cmd = [require("fluidsynth", "fluidsynth"), "-ni", "-q", "-g", str(gain), "-r", str(SAMPLE_RATE),
               "-R", "1" if reverb else "0", "-C", "0", "-F", str(out), "-T", "wav", str(soundfont), str(midi)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=600)
        return _read_wav(out, f"fluidsynth:{soundfont.name}:{midi.name}")


def _vlq(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def write_midi(path: Path, events: list[tuple[float, float, int, int, int, int]], ticks_per_second: int = 960) -> None:
    """A type-0 MIDI file from notes (onset_s, duration_s, channel, program, pitch, velocity).

    Written by hand (a dozen lines of the MIDI spec) because it must be byte-stable for
    reproducible renders; tempo is fixed at 60 bpm so one beat is one second. A note whose program
    differs from its channel's current one is preceded by a program change."""
    messages: list[tuple[int, int, bytes]] = []  # (tick, order, bytes): offs, then program changes, then ons
    current: dict[int, int] = {}
    for onset, duration, channel, program, pitch, velocity in sorted(events):
        on, off = round(onset * ticks_per_second), round((onset + duration) * ticks_per_second)
        if current.get(channel) != program:
            current[channel] = program
            messages.append((on, 1, bytes([0xC0 | channel, program])))
        messages.append((on, 2, bytes([0x90 | channel, pitch, velocity])))
        messages.append((off, 0, bytes([0x80 | channel, pitch, 0])))
    track = bytearray(b"\x00\xff\x51\x03\x0f\x42\x40")  # tempo: 1,000,000 us per beat
    tick = 0
    for at, _, message in sorted(messages):
        track += _vlq(at - tick) + message
        tick = at
    track += _vlq(ticks_per_second // 2) + b"\xff\x2f\x00"  # half a second of tail for release
    header = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
    header += ticks_per_second.to_bytes(2, "big")
    path.write_bytes(header + b"MTrk" + len(track).to_bytes(4, "big") + bytes(track))


def render_notes(events: list[tuple[float, float, int, int, int, int]], soundfont: Path,
                 reverb: bool = False) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        midi = Path(tmp) / "notes.mid"
        write_midi(midi, events)
        return render_midi(midi, soundfont, reverb=reverb)
