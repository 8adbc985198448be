"""The torch-free encoder: ONNX Runtime + numpy + soundfile + soxr.

``Encoder(path)`` takes a model dir (picks the best ONNX file present: INT8 before fp32) or one
.onnx file (self-describing through its metadata). It follows the backend protocol of
``usad.embed`` (``hop``, ``num_layers``, ``encode``), so long files stream through overlapping
windows and short ones batch by length exactly as with the torch model.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from usad.audio import MIN_SAMPLES, SAMPLE_RATE, check_waveform, load_audio, to_mono_16k

# Best first: INT8 at the default opset, fp32, then the TensorRT 8.x (opset 17) files.
ONNX_PREFERENCE = ("model.int8.onnx", "model.onnx", "model.opset17.int8.onnx", "model.opset17.onnx")
DEFAULT_MODEL = "usad-default"


class RuntimeModelError(RuntimeError):
    """A model file or config the runtime cannot use; the message names the file."""


def default_model_dir() -> Path:
    """The small INT8 encoder shipped inside the package."""
    path = Path(__file__).parent / "assets" / DEFAULT_MODEL
    if not path.is_dir():
        raise RuntimeModelError(f"{path}: the packaged default model is missing; reinstall usad-edge or pass a model")
    return path


def find_onnx(model_dir: Path, prefer: str | None = None) -> Path:
    """The best ONNX file of a model dir; ``prefer`` "fp32" skips INT8 files."""
    names = [n for n in ONNX_PREFERENCE if prefer != "fp32" or ".int8." not in n]
    for name in names:
        if (model_dir / name).is_file():
            return model_dir / name
    raise RuntimeModelError(f"{model_dir}: no ONNX model ({', '.join(names)}); run `usad export {model_dir}` first")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RuntimeModelError(f"{path}: unreadable or not valid JSON ({err})") from err


class Encoder:
    """ONNX encoder: ``encode`` (batched arrays), ``embed`` (one clip or file), ``embed_files``.

    ``threads`` sets ONNX Runtime's intra-op threads (None: one per core).
    """

    def __init__(self, model: str | Path, threads: int | None = None, prefer: str | None = None):
        import onnxruntime as ort

        path = Path(model)
        if path.is_dir():
            self.path = find_onnx(path, prefer)
        elif path.suffix == ".onnx" and path.is_file():
            self.path = path
        else:
            raise RuntimeModelError(f"{path}: not a model directory or an .onnx file")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # ORT raises several private exception types for bad files
            raise RuntimeModelError(f"{self.path}: not a loadable ONNX model ({str(err)[:300]})") from err
        meta = self.session.get_modelmeta().custom_metadata_map
        self._check_io()
        try:
            self.config = json.loads(meta["usad_encoder"])
            self.layers = json.loads(meta["usad_layers"])
        except (KeyError, json.JSONDecodeError) as err:
            raise RuntimeModelError(f"{self.path}: no USAD metadata (usad_encoder, usad_layers); "
                                    "was it written by `usad export`?") from err
        self.untrained = meta.get("usad_untrained") == "true"
        config_path = self.path.parent / "config.json"
        if config_path.is_file():
            dir_config = _read_json(config_path)
            if dir_config.get("encoder") != self.config:
                raise RuntimeModelError(f"{config_path} does not match {self.path}: the ONNX file was exported from "
                                        "another model; re-run `usad export`")
            self.untrained = self.untrained or bool(dir_config.get("untrained"))
        if self.untrained:
            warnings.warn(f"{self.path}: this encoder's weights are UNTRAINED (random init); its embeddings carry "
                          "no learned meaning. Pass a trained model dir for real use.", stacklevel=2)
        self.hop = SAMPLE_RATE // int(self.config["frame_rate"])
        self.num_layers = len(self.layers)
        self.dim = int(self.config["dim"])

    def _check_io(self) -> None:
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != ["waveforms", "lengths"] or len(outputs) != 2 or outputs[1] != "mask":
            raise RuntimeModelError(f"{self.path}: inputs {inputs} / outputs {outputs} are not a USAD encoder's "
                                    "(waveforms, lengths) -> (hidden_states | embedding, mask)")
        self.pooled_output = outputs[0] == "embedding"

    def __repr__(self) -> str:
        return f"Encoder({self.path}, layers={self.layers}, dim={self.dim})"

    def encode(self, waveforms: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """waveforms (B, S) float32 16 kHz, lengths (B,) -> hidden (L, B, T, D), real frames (B,)."""
        if self.pooled_output:
            raise RuntimeModelError(f"{self.path}: exported with pooled output only; frame outputs need an export "
                                    "without --pooled")
        waveforms = np.ascontiguousarray(waveforms, dtype=np.float32)
        if waveforms.ndim != 2 or waveforms.shape[1] < MIN_SAMPLES:
            raise ValueError(f"waveforms must be (batch, >= {MIN_SAMPLES} samples), got {waveforms.shape}")
        hidden, mask = self.session.run(None, {"waveforms": waveforms,
                                               "lengths": np.asarray(lengths, dtype=np.int64)})
        return hidden.transpose(1, 0, 2, 3), mask.sum(1)

    def embed(self, audio: np.ndarray | str | Path, sample_rate: int = SAMPLE_RATE,
              layers: Sequence[int] | None = (-1,), pool: str = "mean", chunk_seconds: float = 30.0,
              context_seconds: float = 2.0) -> np.ndarray:
        """One clip (array at ``sample_rate``, or a file) -> (len(layers), D) pooled or (len(layers), T, D).

        ``layers`` index the exported layers (-1: last); None keeps all. Audio longer than
        ``chunk_seconds`` runs in windows with ``context_seconds`` of overlap on each side.
        """
        from usad.chunking import FrameAccumulator, iter_windows

        if isinstance(audio, (str, Path)):
            name, audio = str(audio), load_audio(audio)
        else:
            name, audio = "audio", to_mono_16k(audio, sample_rate)
        audio = check_waveform(audio, name)
        chosen = None if layers is None else [i % self.num_layers for i in layers]
        chunk = max(self.hop, int(chunk_seconds * SAMPLE_RATE) // self.hop * self.hop)
        context = max(self.hop, int(context_seconds * SAMPLE_RATE) // self.hop * self.hop)
        acc = FrameAccumulator(keep_frames=pool == "none")
        for window in iter_windows([audio], self.hop, chunk, context):
            wave = np.pad(window.audio, (0, max(0, MIN_SAMPLES - window.audio.size)))
            hidden, frames = self.encode(wave[None], np.array([window.audio.size]))
            stop = int(frames[0]) if window.keep_stop is None else min(window.keep_stop, int(frames[0]))
            part = hidden[:, 0, window.keep_start:stop]
            acc.add(part if chosen is None else part[chosen])
        return acc.mean() if pool == "mean" else acc.frames()

    def stream(self, layers: Sequence[int] | None = (-1,)):
        """A ``usad.streaming.FrameStream`` over this model dir's streaming export (INT8 when this encoder
        is INT8): ``push(samples)`` any sizes, frames with timestamps out; ``close()`` at the end."""
        from usad.streaming import open_stream

        threads = self.session.get_session_options().intra_op_num_threads
        return open_stream(self.path.parent, threads or None, layers, "int8" if ".int8." in self.path.name else "fp32")

    def embed_files(self, paths: Sequence[str | Path], **kwargs):
        """``usad.embed.embed_files`` with this encoder: batching by length, long files chunked."""
        from usad.embed import embed_files

        return embed_files(self, paths, **kwargs)
