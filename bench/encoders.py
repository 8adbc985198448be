"""Frozen encoders for the accuracy bench, built from one spec string.

Specs:
  MODEL_DIR              a USAD model dir (torch weights; a dir with only ONNX files goes to onnx:)
  fbank                  log-mel fbank features (usad.features.KaldiFbank), the lower bound
  random:PRESET          a randomly initialised UsadEncoder of a preset (seed 0), the other lower bound
  teacher:KIND:PATH      a teacher used as an encoder (usad.teachers.load_teacher spec)
  onnx:PATH / FILE.onnx  an exported encoder through usad.runtime.Encoder (model dir or .onnx file)

Every encoder maps a padded batch (B, S) float32 16 kHz + lengths (B,) to per-layer frame
features (L, B, T, D) as numpy, real frame counts (B,) and a frame rate; clip-level teachers give
T = 1 and frame_rate None. ``fingerprint`` hashes the weights, so caches follow the model file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


class BenchEncoder:
    name: str
    fingerprint: str
    frame_rate: float | None

    def encode(self, waveforms: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


def _hash_state(state: dict[str, torch.Tensor], salt: str) -> str:
    digest = hashlib.sha256(salt.encode())
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def _hash_files(paths: list[Path], salt: str) -> str:
    digest = hashlib.sha256(salt.encode())
    for path in sorted(paths):
        digest.update(path.name.encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class FbankEncoder(BenchEncoder):
    frame_rate = 100.0

    def __init__(self):
        from usad.features import KaldiFbank

        self.name, self.fbank = "fbank", KaldiFbank().eval()
        self.fingerprint = hashlib.sha256(b"kaldi-fbank-128").hexdigest()

    @torch.no_grad()
    def encode(self, waveforms, lengths):
        features, frames = self.fbank(torch.from_numpy(waveforms), torch.from_numpy(lengths))
        return features.numpy()[None], frames.numpy()


class BackendEncoder(BenchEncoder):
    """A ``usad.embed.Backend`` (torch weights or the ONNX runtime) as a bench encoder."""

    def __init__(self, backend, name: str, fingerprint: str):
        self.backend, self.name, self.fingerprint = backend, name, fingerprint
        self.frame_rate = float(backend.frame_rate)

    @classmethod
    def from_dir(cls, path: Path) -> BackendEncoder:
        import usad
        from usad.backends import TorchBackend

        files = [p for p in path.glob("*.safetensors")] + [path / "config.json"]
        return cls(TorchBackend(usad.load(path)), path.name, _hash_files(files, "usad-dir"))

    @classmethod
    def random(cls, preset: str) -> BackendEncoder:
        from usad.backends import TorchBackend
        from usad.model import create_model

        torch.manual_seed(0)
        model = create_model(preset)
        return cls(TorchBackend(model), f"random:{preset}", _hash_state(model.state_dict(), f"random:{preset}"))

    @classmethod
    def onnx(cls, path: Path) -> BackendEncoder:
        """An exported encoder scored through the torch-free runtime, the file's hash as fingerprint."""
        from usad.runtime import Encoder

        runtime = Encoder(path)
        return cls(runtime, f"{runtime.path.parent.name}/{runtime.path.name}", _hash_files([runtime.path], "onnx"))

    def encode(self, waveforms, lengths):
        hidden, frames = self.backend.encode(waveforms, lengths)
        return hidden, np.asarray(frames, np.int64)


class TeacherEncoder(BenchEncoder):
    def __init__(self, spec: str):
        from usad.teachers import load_teacher

        self.teacher, self.name = load_teacher(spec), spec.split(":", 1)[0]
        self.fingerprint = _hash_state(self.teacher.state_dict(), f"teacher:{spec.split(':', 1)[0]}")
        self.frame_rate = self.teacher.frame_rate

    @torch.no_grad()
    def encode(self, waveforms, lengths):
        out = self.teacher(torch.from_numpy(waveforms), torch.from_numpy(lengths))
        # CREPE's and aiSFX's layers differ in width: zero-pad to the widest (a probe standardises
        # features, so the zero columns carry nothing) to keep one (L, B, T, D) array.
        width = max(layer.shape[-1] for layer in out.layers)
        layers = torch.stack([F.pad(layer.float(), (0, width - layer.shape[-1])) for layer in out.layers])
        if out.clip_level:  # (L, B, D) -> one frame per clip
            return layers[:, :, None].numpy(), np.ones(waveforms.shape[0], np.int64)
        return layers.numpy(), out.mask.sum(1).numpy()


def load_encoder(spec: str) -> BenchEncoder:
    """Resolve a model spec (see the module docstring); a wrong spec raises ValueError naming it."""
    if spec == "fbank":
        return FbankEncoder()
    if spec.startswith("random:"):
        return BackendEncoder.random(spec[len("random:"):])
    if spec.startswith("teacher:"):
        return TeacherEncoder(spec[len("teacher:"):])
    if spec.startswith("onnx:") or spec.endswith(".onnx"):
        return BackendEncoder.onnx(Path(spec.removeprefix("onnx:")))
    path = Path(spec)
    if path.is_dir() and (path / "config.json").is_file():
        if any(path.glob("model*.safetensors*")):
            return BackendEncoder.from_dir(path)
        if any(path.glob("*.onnx")):  # an exported-only dir, e.g. the packaged default model
            return BackendEncoder.onnx(path)
    raise ValueError(f"model spec {spec!r}: not a model dir with config.json, and not one of fbank, "
                     "random:PRESET, teacher:KIND:PATH, onnx:PATH, FILE.onnx")
