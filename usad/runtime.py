"""The torch-free encoder: ONNX Runtime + numpy + soundfile + soxr.

``Encoder(path)`` takes a model dir (the file ``usad.onnx_conventions.choose_file`` picks: the exporter's
measured default, else INT8 before fp32, never an INT8 forced past its guard unless asked) or one .onnx file
(self-describing through its metadata). It is a ``usad.embed.Backend``, so files stream through overlapping
windows and short ones batch by length exactly as with the torch model.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from usad.audio import MIN_SAMPLES, iter_audio_blocks, to_mono_16k
from usad.config import SAMPLE_RATE
from usad.embed import EmbedResult, Pool, Windowing, embed_blocks, embed_files
from usad.errors import UsadError
from usad.onnx_conventions import RUNTIME_PREFERENCE, choose_file, cpu_session

DEFAULT_MODEL = "usad-default"


class RuntimeModelError(UsadError, RuntimeError):
    """A model file or config the runtime cannot use; the message names the file."""


def default_model_dir() -> Path:
    """The small INT8 encoder shipped inside the package."""
    path = Path(__file__).parent / "assets" / DEFAULT_MODEL
    if not path.is_dir():
        raise RuntimeModelError(f"{path}: the packaged default model is missing; reinstall usad-edge or pass a model")
    return path


def read_json(path: Path) -> dict:
    """A model dir's JSON file (config.json, export.json); a bad one is a RuntimeModelError naming it."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RuntimeModelError(f"{path}: unreadable or not valid JSON ({err})") from err


def _resolve(model: Path, prefer: str | None) -> Path:
    if model.is_dir():
        found = choose_file(model, prefer)
        if found is None:
            wanted = f"{prefer} ONNX file" if prefer else f"ONNX model ({', '.join(RUNTIME_PREFERENCE)})"
            raise RuntimeModelError(f"{model}: no {wanted}; run `usad export {model}` first")
        return found
    if model.suffix == ".onnx" and model.is_file():
        return model
    raise RuntimeModelError(f"{model}: not a model directory or an .onnx file")


class Encoder:
    """ONNX encoder: ``encode`` (batched arrays), ``embed`` (one clip or file), ``embed_files``.

    ``threads`` sets ONNX Runtime's intra-op threads (None: one per core); ``prefer`` "fp32" / "int8".
    """

    def __init__(self, model: str | Path, threads: int | None = None, prefer: str | None = None):
        self.path = _resolve(Path(model), prefer)
        try:
            self.session = cpu_session(self.path, threads)
        except Exception as err:  # ORT raises several private exception types for bad files
            raise RuntimeModelError(f"{self.path}: not a loadable ONNX model ({str(err)[:300]})") from err
        meta = self.session.get_modelmeta().custom_metadata_map
        self._check_io()
        try:
            self.config = json.loads(meta["usad_encoder"])
            self.layers = tuple(json.loads(meta["usad_layers"]))
        except (KeyError, json.JSONDecodeError) as err:
            raise RuntimeModelError(f"{self.path}: no USAD metadata (usad_encoder, usad_layers); "
                                    "was it written by `usad export`?") from err
        self.untrained = meta.get("usad_untrained") == "true"
        config_path = self.path.parent / "config.json"
        if config_path.is_file():
            dir_config = read_json(config_path)
            if dir_config.get("encoder") != self.config:
                raise RuntimeModelError(f"{config_path} does not match {self.path}: the ONNX file was exported from "
                                        "another model; re-run `usad export`")
            self.untrained = self.untrained or bool(dir_config.get("untrained"))
        if self.untrained:
            warnings.warn(f"{self.path}: this encoder's weights are UNTRAINED (random init); its embeddings carry "
                          "no learned meaning. Pass a trained model dir for real use.", stacklevel=2)
        self.name = str(self.config.get("name", self.path.parent.name))
        self.frame_rate = float(self.config["frame_rate"])
        self.hop = SAMPLE_RATE // int(self.config["frame_rate"])
        self.depth = int(self.config["depth"])
        self.dim = int(self.config["dim"])

    def _check_io(self) -> None:
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != ["waveforms", "lengths"] or len(outputs) != 2 or outputs[1] != "mask":
            raise RuntimeModelError(f"{self.path}: inputs {inputs} / outputs {outputs} are not a USAD encoder's "
                                    "(waveforms, lengths) -> (hidden_states | embedding, mask)")
        self.pooled_output = outputs[0] == "embedding"

    def __repr__(self) -> str:
        return f"Encoder({self.path}, layers={list(self.layers)}, dim={self.dim})"

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
              layers: Sequence[int] | None = None, pool: Pool = "mean",
              windowing: Windowing = Windowing()) -> np.ndarray:
        """One clip (an array at ``sample_rate``, or a file, streamed) -> (L, D) pooled or (L, T, D) frames.

        ``layers``: hidden-state numbers (0 = positional encoder output, -1 = last); None: all in the file."""
        if isinstance(audio, (str, Path)):
            blocks = iter_audio_blocks(audio, windowing.chunk_seconds)
        else:
            from usad.audio import check_waveform

            blocks = [check_waveform(to_mono_16k(audio, sample_rate), "audio")]
        return embed_blocks(self, blocks, layers, pool, windowing)

    def embed_files(self, paths: Sequence[str | Path], **options) -> EmbedResult:
        """``usad.embed.embed_files`` with this encoder: batching by length, long files streamed."""
        return embed_files(self, paths, **options)
