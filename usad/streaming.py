"""Streaming embeddings, torch-free: push audio in blocks of any size, get frame embeddings with timestamps.

``FrameStream`` drives the stateful chunk encoder (usad.stream_step, exported by ``usad export
--stream`` as ``model.stream.onnx`` / ``model.stream.int8.onnx``): it buffers pushed samples,
runs one step per chunk as soon as its audio is in, carries every cache from step to step and,
on ``close()``, pads the last chunk and keeps only real frames. Memory is constant in the stream's
length: the caches have fixed shapes and at most one step of audio waits in the buffer.

Latency of a frame = algorithmic latency (waiting for audio) + compute of its chunk. The
algorithmic latency of a chunk's first frame is chunk + look-ahead + 15 ms: a step takes whole
subsampler strides of fbank frames, and the last one's window ends 240 samples past the chunk's
last hop; its last frame waits look-ahead + 15 ms.

    stream = Encoder("model-dir/").stream()         # numpy + onnxruntime only
    for block in microphone_blocks():                # any sizes, 16 kHz mono float32
        for start, end, embedding in stream.push(block):
            ...                                      # embedding (layers, D) of [start, end) seconds
    tail = stream.close()
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from usad.audio import MIN_SAMPLES, AudioError
from usad.config import FRAME_LENGTH, FRAME_SHIFT, SAMPLE_RATE, EncoderConfig
from usad.errors import UsadError
from usad.onnx_conventions import STREAM_FILES, cpu_session

FBANK_OVERLAP = FRAME_LENGTH - FRAME_SHIFT  # samples of the previous call a step's first window needs
CONTROL_INPUTS = ("audio", "start_frame", "valid_frames")
STATE_NAMES = ("fbank_overlap", "subsampler_cache1", "subsampler_cache2", "pos_cache", "kv_cache", "lookahead")

StepRunner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def next_name(state: str) -> str:
    """Output name of a state's next value."""
    return f"next_{state}"


def algorithmic_latency_ms(config: EncoderConfig) -> float:
    """From a chunk's first sample to the sample that completes its last look-ahead window."""
    samples = (config.chunk_frames + config.lookahead_frames) * config.samples_per_frame + FBANK_OVERLAP
    return samples * 1000 / SAMPLE_RATE


@dataclass
class Frames:
    """Consecutive frames of a stream: ``hidden`` (layers, N, D) for global frame numbers ``index`` (N,)."""

    index: np.ndarray
    hidden: np.ndarray
    frame_seconds: float

    @property
    def start(self) -> np.ndarray:
        """(N,) seconds from the stream's start to each frame's start."""
        return self.index * self.frame_seconds

    @property
    def end(self) -> np.ndarray:
        return (self.index + 1) * self.frame_seconds

    def __len__(self) -> int:
        return int(self.index.size)

    def __iter__(self) -> Iterator[tuple[float, float, np.ndarray]]:
        """(start s, end s, embedding (layers, D)) per frame."""
        for i in range(len(self)):
            yield float(self.start[i]), float(self.end[i]), self.hidden[:, i]


class FrameStream:
    """One audio stream through a chunk step ``run`` (feeds -> outputs, numpy), caches zero-initialised
    from ``state_shapes``. ``layers`` pick among the step's output layers (their positions)."""

    def __init__(self, run: StepRunner, state_shapes: dict[str, tuple[int, ...]], config: EncoderConfig,
                 layers: Sequence[int]):
        self.run, self.config, self.state_shapes = run, config, dict(state_shapes)
        self.layers = list(layers)
        self.chunk, self.lookahead = config.chunk_frames, config.lookahead_frames
        self.hop = config.samples_per_frame
        self.reset()

    def reset(self) -> None:
        """Start a new stream on the same step (session): zero caches, frame 0 next."""
        self.state = {name: np.zeros(shape, np.float32) for name, shape in self.state_shapes.items()}
        self.pending = np.zeros(0, np.float32)  # samples not yet given to a step
        self.samples = 0  # pushed so far
        self.steps = 0  # chunk n of the next step
        self.started = False  # fbank_overlap holds the stream's first samples
        self.closed = False

    @property
    def latency_ms(self) -> float:
        return algorithmic_latency_ms(self.config)

    def _step_samples(self) -> int:
        return (self.chunk + (self.lookahead if self.steps == 0 else 0)) * self.hop

    def _empty(self) -> Frames:
        hidden = np.zeros((len(self.layers), 0, self.config.dim), np.float32)
        return Frames(np.zeros(0, np.int64), hidden, self.hop / SAMPLE_RATE)

    def _step(self, audio: np.ndarray, valid: int) -> np.ndarray:
        """Run chunk ``self.steps`` on ``audio``; returns its frames (layers, C, D)."""
        feeds = {"audio": audio[None], "start_frame": np.array([self.steps * self.chunk], np.int64),
                 "valid_frames": np.array([valid], np.int64), **self.state}
        outputs = self.run(feeds)
        for name in self.state:
            self.state[name] = outputs[next_name(name)]
        self.steps += 1
        return outputs["hidden_states"][0][self.layers]

    def _frames(self, parts: list[tuple[int, np.ndarray]]) -> Frames:
        if not parts:
            return self._empty()
        index = np.concatenate([np.arange(first, first + h.shape[1]) for first, h in parts])
        return Frames(index, np.concatenate([h for _, h in parts], 1), self.hop / SAMPLE_RATE)

    def _start(self) -> None:
        self.state["fbank_overlap"] = self.pending[None, :FBANK_OVERLAP].copy()
        self.pending, self.started = self.pending[FBANK_OVERLAP:], True

    def push(self, audio: np.ndarray) -> Frames:
        """Append (S,) float32 samples at 16 kHz; returns the frames of every chunk completed by them."""
        if self.closed:
            raise RuntimeError("this stream is closed; open a new one with Encoder.stream()")
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"push takes mono samples (S,), got shape {audio.shape}")
        if not np.isfinite(audio).all():
            raise AudioError(f"stream: NaN/inf samples near {self.samples / SAMPLE_RATE:.2f} s")
        self.samples += audio.size
        self.pending = np.concatenate([self.pending, audio])
        if not self.started and self.pending.size >= FBANK_OVERLAP:
            self._start()
        parts = []
        while self.started and self.pending.size >= self._step_samples():
            need, first = self._step_samples(), self.steps * self.chunk
            audio, self.pending = self.pending[:need], self.pending[need:]
            parts.append((first, self._step(audio, self.chunk + self.lookahead)))
        return self._frames(parts)

    def close(self) -> Frames:
        """End of stream: the remaining frames (zero-padded audio, only real frames kept)."""
        if self.closed:
            return self._empty()
        self.closed = True
        if self.samples == 0:
            return self._empty()
        # As offline: a clip shorter than one window is zero-padded to it.
        total = max(self.samples, MIN_SAMPLES)
        frames = int(self.config.num_frames(total))
        if not self.started:
            self.pending = np.pad(self.pending, (0, max(0, FBANK_OVERLAP - self.pending.size)))
            self._start()
        parts = []
        while self.steps * self.chunk < frames:
            need, first = self._step_samples(), self.steps * self.chunk
            audio, self.pending = self.pending[:need], self.pending[need:]
            audio = np.pad(audio, (0, need - audio.size))
            hidden = self._step(audio, min(frames - first, self.chunk + self.lookahead))
            parts.append((first, hidden[:, : min(self.chunk, frames - first)]))
        return self._frames(parts)


def stream_blocks(stream: FrameStream, blocks: Iterator[np.ndarray]) -> Iterator[Frames]:
    """Push every block, then close: the frames of the whole stream, chunk by chunk."""
    for block in blocks:
        frames = stream.push(block)
        if len(frames):
            yield frames
    frames = stream.close()
    if len(frames):
        yield frames


class OrtStepRunner:
    """An ONNX Runtime session of an exported chunk step behind the ``StepRunner`` interface."""

    def __init__(self, session):
        self.session = session
        self.outputs = [o.name for o in session.get_outputs()]
        self.state_shapes = {i.name: tuple(i.shape) for i in session.get_inputs() if i.name not in CONTROL_INPUTS}

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.outputs, self.session.run(self.outputs, feeds)))


def find_stream_onnx(model_dir: Path, precision: str = "int8") -> Path:
    """The stream step file of a model dir: INT8 unless ``precision`` is "fp32", else the fp32 one."""
    names = [STREAM_FILES[precision]] + ([STREAM_FILES["fp32"]] if precision == "int8" else [])
    for name in names:
        if (model_dir / name).is_file():
            return model_dir / name
    raise FileNotFoundError(f"{model_dir}: no streaming export ({', '.join(names)}); "
                            f"run `usad export {model_dir} --stream` (a streaming preset such as usad-tiny-stream)")


class StreamModelError(UsadError, RuntimeError):
    """A streaming export the runtime cannot use; the message names the file."""


def open_stream(model: str | Path, threads: int | None = None, layers: Sequence[int] | None = (-1,),
                precision: str = "int8") -> FrameStream:
    """A ``FrameStream`` over the streaming export of a model dir (or a ``model.stream*.onnx`` file).

    ``layers`` index the exported layers (-1: last; None: all); ``threads``: ORT intra-op threads."""
    import json

    path = Path(model)
    path = find_stream_onnx(path, precision) if path.is_dir() else path
    try:
        session = cpu_session(path, threads)
        meta = session.get_modelmeta().custom_metadata_map
        config = EncoderConfig.from_dict(json.loads(meta["usad_encoder"]))
        exported = json.loads(meta["usad_layers"])
    except Exception as err:  # ORT raises private exception types for bad files
        raise StreamModelError(f"{path}: not a loadable streaming export ({str(err)[:300]})") from err
    runner = OrtStepRunner(session)
    if "audio" not in {i.name for i in session.get_inputs()}:
        raise StreamModelError(f"{path}: not a streaming step (no 'audio' input); export with `usad export --stream`")
    chosen = range(len(exported)) if layers is None else [i % len(exported) for i in layers]
    return FrameStream(runner, runner.state_shapes, config, chosen)
