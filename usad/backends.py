"""Opening a model for the embed path: the torch encoder of a model dir, or the ONNX runtime when the dir
holds an exported file. Both follow ``usad.embed.Backend``."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class TorchBackend:
    """A ``usad.model.UsadEncoder`` behind the Backend protocol; every hidden state is returned."""

    def __init__(self, model, device: str = "cpu"):
        import torch

        self.torch = torch
        self.model = model.to(device).eval()
        self.device = device
        self.name = model.config.name
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


def is_model_path(path: str | Path) -> bool:
    """A model dir (config.json inside) or an .onnx file."""
    path = Path(path)
    return path.suffix == ".onnx" or (path.is_dir() and (path / "config.json").is_file())


def open_backend(model: str | Path, device: str = "cpu", threads: int | None = None, prefer: str | None = None):
    """The backend for a model dir or .onnx file: ONNX Runtime when an ONNX file is there (``prefer``: "fp32"
    or "int8" picks among them), else the torch weights on ``device``."""
    path = Path(model)
    if path.suffix == ".onnx" or any(path.glob("*.onnx")):
        from usad.runtime import Encoder

        return Encoder(path, threads=threads, prefer=prefer)
    import torch

    from usad.modeldir import load

    if threads:
        torch.set_num_threads(threads)
    return TorchBackend(load(path), device)
