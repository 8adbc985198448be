"""Corpus shards: WebDataset-layout tar files of 16 kHz mono clips with JSON metadata.

A shard holds samples ``{key}.{audio}`` + ``{key}.json`` ({"domain", "source", "seconds", ...}), where
the audio member is Ogg Opus (``.opus``: compact, for moving data), FLAC (``.flac``: lossless, ~6x the
bytes, decodes ~8x faster) or 16-bit PCM WAV (``.wav``: pre-decoded, no codec work at all); readers
take any of them (``usad data transcode`` converts). Plain tar keeps shards readable by webdataset,
lhotse or ``tar`` alike. ``manifest.json`` beside the shards lists each shard's path (relative to the
manifest's directory), sha256, clip count, domain and seconds per domain.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from usad.audio import SAMPLE_RATE, AudioError, check_waveform
from usad.files import sha256_file

MANIFEST = "manifest.json"
DOMAINS = ("speech", "sound", "music")


@dataclass
class Clip:
    key: str
    audio: np.ndarray  # (S,) float32, 16 kHz mono
    domain: str
    source: str
    meta: dict = field(default_factory=dict)


def _ogg_crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_OGG_CRC = _ogg_crc_table()


def _with_fixed_serial(ogg: bytes, serial: int = 1) -> bytes:
    """libsndfile picks a random Ogg stream serial per file; pin it (and redo each page's CRC)
    so the same audio always encodes to the same bytes and shard hashes are reproducible."""
    out = bytearray(ogg)
    pos = 0
    while pos < len(out):
        if out[pos:pos + 4] != b"OggS":
            raise ValueError("not an Ogg stream")
        n_segments = out[pos + 26]
        page_len = 27 + n_segments + sum(out[pos + 27:pos + 27 + n_segments])
        out[pos + 14:pos + 18] = serial.to_bytes(4, "little")
        out[pos + 22:pos + 26] = b"\0\0\0\0"
        crc = 0
        for byte in out[pos:pos + page_len]:
            crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[(crc >> 24) ^ byte]
        out[pos + 22:pos + 26] = crc.to_bytes(4, "little")
        pos += page_len
    return bytes(out)


# libsndfile (1.1-1.2) maps compression_level linearly onto the Opus bitrate: 0 -> 256 kbps, 1 -> 6 kbps
# (ogg_opus.c). Measured at 16 kHz mono in bench/results/opus_bitrate.md. It refuses a bitrate_mode
# together with a compression_level, so the encoder stays in libopus's default VBR.
OPUS_KBPS_RANGE = (6.0, 256.0)


def opus_compression_level(kbps: float) -> float:
    """libsndfile's compression_level for an Opus target bitrate in kbit/s."""
    low, high = OPUS_KBPS_RANGE
    if not low <= kbps <= high:
        raise ValueError(f"Opus bitrate {kbps:g} kbps is outside libsndfile's {low:g}-{high:g} kbps")
    return (high - kbps) / (high - low)


def encode_opus(audio: np.ndarray, kbps: float | None = None) -> bytes:
    """(S,) float32 at 16 kHz -> Ogg Opus bytes, identical for identical input. ``kbps``: target
    bitrate (None: libsndfile's default, about 29 kbps for 16 kHz mono)."""
    buf = io.BytesIO()
    level = {} if kbps is None else {"compression_level": opus_compression_level(kbps)}
    sf.write(buf, audio, SAMPLE_RATE, format="OGG", subtype="OPUS", **level)
    return _with_fixed_serial(buf.getvalue())


AUDIO_EXTENSIONS = ("opus", "flac", "wav")


def open_audio(data: bytes, name: str) -> sf.SoundFile:
    """A shard member's audio, opened (header read, nothing decoded yet); AudioError if it is not 16 kHz audio."""
    try:
        audio = sf.SoundFile(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(f"{name}: undecodable audio ({getattr(err, 'error_string', err)})") from err
    if audio.samplerate != SAMPLE_RATE:
        audio.close()
        raise AudioError(f"{name}: shard audio at {audio.samplerate} Hz, expected {SAMPLE_RATE}")
    return audio


def decode_audio(data: bytes, name: str, start: int = 0, frames: int = -1) -> np.ndarray:
    """(S,) float32 of a shard member's audio: ``frames`` samples from ``start`` (all by default); only
    that span is decoded (a seek for FLAC and WAV, Opus decodes from the nearest page)."""
    try:
        with open_audio(data, name) as audio:
            if start:
                audio.seek(start)
            samples = audio.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(f"{name}: undecodable audio ({getattr(err, 'error_string', err)})") from err
    return check_waveform(samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0], name)


def audio_member(sample: dict[str, bytes]) -> tuple[str, bytes] | None:
    """(extension, bytes) of a sample's audio member, None when it has none."""
    for ext in AUDIO_EXTENSIONS:
        if ext in sample:
            return ext, sample[ext]
    return None


def add_member(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mtime = 0  # a rebuild gives byte-identical shards, hence the same sha256
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(payload))


class ShardWriter:
    """Writes clips into ``{prefix}-{n:05d}.tar`` shards of at most ``max_bytes``.

    domain: when given, every clip must be of that domain and each shard's manifest entry records it
    (``manifest["shards"][i]["domain"]``), so a loader can stream the domains apart.
    """

    def __init__(self, directory: str | Path, prefix: str = "shard", max_bytes: int = 48 * 1024 * 1024,
                 domain: str | None = None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix, self.max_bytes, self.domain = prefix, max_bytes, domain
        self.shards: list[dict] = []
        self._tar: tarfile.TarFile | None = None
        self._bytes = 0

    def _open_next(self) -> None:
        self.close_shard()
        name = f"{self.prefix}-{len(self.shards):05d}.tar"
        self._tar = tarfile.open(self.directory / (name + ".tmp"), "w", format=tarfile.USTAR_FORMAT)
        self._bytes = 0
        self.shards.append({"path": name, "clips": 0, "seconds": {}} | ({"domain": self.domain} if self.domain else {}))

    def write(self, key: str, opus: bytes, meta: dict) -> None:
        if self.domain is not None and meta["domain"] != self.domain:
            raise ValueError(f"{key}: a {meta['domain']} clip in a writer of {self.domain} shards")
        payload = json.dumps(meta, sort_keys=True).encode()
        size = len(opus) + len(payload) + 2048
        if self._tar is None or (self._bytes and self._bytes + size > self.max_bytes):
            self._open_next()
        add_member(self._tar, f"{key}.opus", opus)
        add_member(self._tar, f"{key}.json", payload)
        self._bytes += size
        entry = self.shards[-1]
        entry["clips"] += 1
        seconds = entry["seconds"]
        seconds[meta["domain"]] = round(seconds.get(meta["domain"], 0.0) + float(meta["seconds"]), 3)

    def close_shard(self) -> None:
        if self._tar is None:
            return
        self._tar.close()
        entry = self.shards[-1]
        final = self.directory / entry["path"]
        os.replace(self.directory / (entry["path"] + ".tmp"), final)
        entry["sha256"] = sha256_file(final)
        entry["bytes"] = final.stat().st_size
        self._tar = None

    def close(self, extra: dict | None = None) -> dict:
        """Finish the last shard and write ``manifest.json``; returns the manifest."""
        self.close_shard()
        return write_manifest(self.directory, self.shards, extra)


def write_manifest(directory: str | Path, shards: list[dict], extra: dict | None = None) -> dict:
    """Write ``manifest.json`` (atomically) listing ``shards``; their paths are relative to ``directory``."""
    manifest = {"format": "usad-shards/1", "sample_rate": SAMPLE_RATE, "shards": shards, **(extra or {})}
    tmp = Path(directory) / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, Path(directory) / MANIFEST)
    return manifest


def read_manifest(directory: str | Path) -> dict:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no corpus manifest (build one with `usad data corpus`)")
    return json.loads(path.read_text())


def shard_domains(entry: dict) -> list[str]:
    """The domains of a manifest's shard entry: its ``domain``, else those it has seconds of."""
    return [entry["domain"]] if "domain" in entry else sorted(entry.get("seconds", {}))


def verify_shards(directory: str | Path) -> list[str]:
    """Shard paths whose sha256 differs from the manifest (empty when all match)."""
    directory = Path(directory)
    return [s["path"] for s in read_manifest(directory)["shards"]
            if not (directory / s["path"]).is_file() or sha256_file(directory / s["path"]) != s["sha256"]]


def iter_shard(path: str | Path, errors: list[str] | None = None) -> Iterator[Clip]:
    """Decoded clips of one local shard in stored order. Undecodable clips are skipped and, when
    ``errors`` is given, named there; without it they raise."""
    with tarfile.open(path) as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        for name in sorted(n for n in members if n.endswith(".json")):
            key = name[: -len(".json")]
            meta = json.loads(tar.extractfile(members[name]).read())
            audio = next((members[f"{key}.{ext}"] for ext in AUDIO_EXTENSIONS if f"{key}.{ext}" in members), None)
            try:
                if audio is None:
                    raise AudioError(f"{path}:{key}: audio member missing")
                waveform = decode_audio(tar.extractfile(audio).read(), f"{path}:{key}")
            except AudioError as err:
                if errors is None:
                    raise
                errors.append(str(err))
                continue
            yield Clip(key, waveform, meta["domain"], meta.get("source", ""), meta)
