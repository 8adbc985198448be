"""Opening a model for the embed path: the torch encoder of a model dir, or the ONNX runtime when the dir
holds an exported file. Both follow ``usad.embed.Backend``."""

from __future__ import annotations

import glob
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from usad.errors import MissingExtra
from usad.files import sha256_file


class TorchBackend:
    """A ``usad.model.UsadEncoder`` behind the Backend protocol; every hidden state is returned."""

    def __init__(self, model, device: str = "cpu", path: str | Path | None = None):
        import torch

        self.torch = torch
        self.model = model.to(device).eval()
        self.device = device
        self.path = Path(path) if path is not None else None  # the model dir it was loaded from
        self.name = model.config.name
        self.dim = model.config.dim
        self.hop = model.config.samples_per_frame
        self.frame_rate = float(model.config.frame_rate)
        self.depth = model.config.depth
        self.layers = tuple(range(self.depth + 1))

    def encode(self, waveforms: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self.torch
        with torch.inference_mode():
            out = self.model(torch.from_numpy(waveforms).to(self.device), torch.from_numpy(lengths).to(self.device))
            hidden = torch.stack(out.hidden_states).float().cpu().numpy()
        return hidden, out.mask.sum(1).cpu().numpy()


MODEL_FILE_PATTERNS = ("config.json", "*.onnx", "*.safetensors", "model.safetensors.index.json", "export.json")


def is_model_path(path: str | Path) -> bool:
    """An .onnx file, or a folder holding any file of a model dir (config.json, ONNX, safetensors): such a
    folder is opened as a model, so one that is not a valid model dir is refused by name, not read as audio."""
    path = Path(path)
    if path.suffix == ".onnx":
        return True
    return path.is_dir() and any(next(path.glob(pattern), None) for pattern in MODEL_FILE_PATTERNS)


def open_backend(model: str | Path, device: str = "cpu", threads: int | None = None, prefer: str | None = None):
    """The backend for a model dir or .onnx file: ONNX Runtime when an ONNX file is there (``prefer``: "fp32"
    or "int8" picks among them), else the torch weights on ``device``."""
    path = Path(model)
    if path.suffix == ".onnx" or any(path.glob("*.onnx")):
        from usad.runtime import Encoder

        return Encoder(path, threads=threads, prefer=prefer)
    try:
        import torch
    except ImportError as err:
        raise MissingExtra(f"{path}: no ONNX file here, and torch weights need torch: `pip install "
                                "'usad-edge[train]'`, or export the model to ONNX with `usad export`") from err

    from usad.modeldir import load

    if threads:
        torch.set_num_threads(threads)
    return TorchBackend(load(path), device, path)


@dataclass(frozen=True)
class BackendSpec:
    """How to open a backend, picklable: worker processes and Ray actors each open their own."""

    model: str
    device: str = "cpu"
    threads: int | None = None
    prefer: str | None = None

    def open(self):
        return open_backend(self.model, self.device, self.threads, self.prefer)


def identity(backend) -> dict:
    """What a run records of its model: name, the file (or dir) it runs from and its sha256, layers, width.
    The hash covers the ONNX file, or a torch model dir's config.json and safetensors files."""
    path = Path(backend.path)
    if path.is_dir():
        combined = hashlib.sha256()
        for file in sorted([path / "config.json", *path.glob("*.safetensors")]):
            combined.update(f"{file.name}:{sha256_file(file)}\n".encode())
        digest = combined.hexdigest()
    else:
        digest = sha256_file(path)
    return {"name": backend.name, "path": str(path), "file": path.name, "sha256": digest,
            "layers": list(backend.layers), "dim": int(backend.dim), "frame_rate": float(backend.frame_rate)}



def split_model_argument(inputs: list[str], default: Path) -> tuple[Path, list[str], bool]:
    """(model, audio inputs, whether the default was taken) from ``[MODEL] INPUT...``. The first argument is
    the model when it is one (``is_model_path``); a first argument that names nothing and has no extension,
    followed by more, is taken for a mistyped model and refused rather than read as audio."""
    first = inputs[0]
    if is_model_path(first):
        return Path(first), inputs[1:], False
    if len(inputs) > 1 and not Path(first).exists() and not Path(first).suffix and not glob.has_magic(first):
        raise FileNotFoundError(f"{first}: no such model directory or .onnx file (audio inputs need an extension; "
                                "with no model argument the packaged default model is used)")
    return default, inputs, True
