"""The formats the latency bench times, each behind one call: ``runner(prepared_inputs)``.

CPU: ``torch-fp32`` (eager), ``torch-compiled`` (inductor, fp32, weights frozen), ``onnx-fp32`` and
``onnx-int8`` (ONNX Runtime, the model dir's ``model.onnx`` / ``model.int8.onnx``).
CUDA: ``cuda-fp32`` (eager), ``cuda-bf16-graphs`` (bf16 autocast, inductor with CUDA graphs,
mode "reduce-overhead"), ``tensorrt`` (listed with the reason it is not timed).
Peer: ``peer-ct2-int8`` / ``peer-ct2-fp32``, the CTranslate2 Whisper tiny.en encoder (``scripts/
convert_whisper_ct2.py``), timed in the same cells as the model when ``Grid.peer`` names its dir.
A format that cannot run says why (``FormatUnavailable``) and the bench reports it as skipped.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from usad.errors import UsadError
from usad.onnx_conventions import FORMAT_FILES, cpu_session, is_int8

CPU_FORMATS = ("torch-fp32", "torch-compiled", *FORMAT_FILES)
CUDA_FORMATS = ("cuda-fp32", "cuda-bf16-graphs", "tensorrt")
PEER_FORMATS = {"peer-ct2-int8": "int8", "peer-ct2-fp32": "float32"}  # format -> subdir of the converted peer
ALL_FORMATS = CPU_FORMATS + CUDA_FORMATS + tuple(PEER_FORMATS)
PRECISION = {"torch-fp32": "fp32", "torch-compiled": "fp32", "cuda-fp32": "fp32", "cuda-bf16-graphs": "bf16",
             "tensorrt": "fp16", "peer-ct2-int8": "int8", "peer-ct2-fp32": "fp32",
             **{fmt: "int8" if is_int8(name) else "fp32" for fmt, name in FORMAT_FILES.items()}}


class FormatUnavailable(UsadError, RuntimeError):
    """This format cannot run for this model on this machine; the message says why."""


@dataclass
class BenchModel:
    """A model under test: a model dir (trained weights, ONNX files) or a preset (fresh weights)."""

    name: str
    model: torch.nn.Module
    directory: Path | None
    untrained: bool
    meta: dict = field(default_factory=dict)

    @classmethod
    def resolve(cls, spec: str | Path) -> BenchModel:
        """``spec``: a model directory, or a preset name (its latency needs no trained weights)."""
        from usad.config import list_presets
        from usad.model import create_model
        from usad.modeldir import load, read_config

        path = Path(spec)
        if path.is_dir():
            config = read_config(path)
            return cls(path.name, load(path), path, bool(config.get("untrained")), {"variant": config.get("variant")})
        if str(spec) in list_presets():
            torch.manual_seed(0)
            model = create_model(str(spec)).eval()
            return cls(str(spec), model, None, True, {"variant": str(spec)})
        raise FileNotFoundError(f"{spec}: neither a model directory nor a preset ({', '.join(list_presets())})")

    def file_for(self, fmt: str) -> Path | None:
        """The file a format runs from (None for the torch formats of a preset, and for peers)."""
        if fmt in PEER_FORMATS:
            return None
        if fmt in FORMAT_FILES or fmt == "tensorrt":
            return None if self.directory is None else self.directory / FORMAT_FILES.get(fmt, "model.onnx")
        if self.directory is None:
            return None
        index = self.directory / "model.safetensors.index.json"
        return index if index.is_file() else self.directory / "model.safetensors"

    def file_bytes(self, fmt: str) -> int | None:
        path = self.file_for(fmt)
        if path is None or not path.is_file():
            return None
        if path.name.endswith(".index.json"):
            shards = set(json.loads(path.read_text())["weight_map"].values())
            return sum((path.parent / s).stat().st_size for s in shards)
        return path.stat().st_size


class TorchRunner:
    """Eager or compiled torch on CPU/CUDA; ``bf16`` runs under autocast."""

    def __init__(self, model: torch.nn.Module, device: str, compiled: bool = False, bf16: bool = False):
        self.device, self.bf16 = torch.device(device), bf16
        self.model = model.to(self.device).eval()
        self.fn = self.model
        if compiled and self.device.type == "cuda":
            import torch._inductor.config as inductor_config

            # Freezing folds the weights and their bf16 casts into constants; CUDA graphs are recorded per shape.
            inductor_config.freezing = True
            # A static graph per (length, batch) and per model copy: the default limit of 8 would fall back to eager.
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 256)
            torch._dynamo.config.accumulated_recompile_limit = max(
                torch._dynamo.config.accumulated_recompile_limit, 1024)
            self.fn = torch.compile(self.model, mode="reduce-overhead", dynamic=False)
        elif compiled:
            # One dynamic-shape graph serves every length (a static compile costs 1-2 min per shape on 2 cores).
            # No freezing here: its mkldnn fusion pass asserts on dynamic shapes (torch 2.13).
            self.fn = torch.compile(self.model, dynamic=True)

    def prepare(self, waves: np.ndarray, lengths: np.ndarray):
        return (torch.from_numpy(waves).to(self.device), torch.from_numpy(lengths).to(self.device))

    def __call__(self, inputs) -> None:
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            out = self.fn(*inputs)
            if self.device.type == "cuda":
                out.hidden_states[-1].clone()  # leave the CUDA graph's output buffer before the next replay
                torch.cuda.synchronize(self.device)


class OnnxRunner:
    """ONNX Runtime CPU session with ``threads`` intra-op threads (None: one per core)."""

    def __init__(self, path: Path, threads: int | None):
        self.session = cpu_session(path, threads)

    def prepare(self, waves: np.ndarray, lengths: np.ndarray):
        return {"waveforms": waves, "lengths": lengths}

    def __call__(self, inputs) -> None:
        self.session.run(None, inputs)


class Ct2WhisperRunner:
    """CTranslate2 Whisper encoder on 30 s of log-mel features: Whisper pads every clip up to 30 s to 3000
    frames, so this is its latency for any clip length (feature extraction not included)."""

    FRAMES = 3000

    def __init__(self, path: Path, threads: int | None):
        try:
            import ctranslate2
        except ImportError as err:
            raise FormatUnavailable("ctranslate2 is not importable here (pip install usad-edge[peer])") from err
        if not (path / "model.bin").is_file():
            raise FormatUnavailable(f"no {path / 'model.bin'} (run scripts/convert_whisper_ct2.py)")
        self.ctranslate2 = ctranslate2
        compute = "int8" if path.name == "int8" else "float32"
        self.model = ctranslate2.models.Whisper(str(path), device="cpu", compute_type=compute,
                                                intra_threads=threads or 0, inter_threads=1)
        self.mels = self.model.n_mels

    def prepare(self, waves: np.ndarray, lengths: np.ndarray):
        features = np.random.default_rng(0).standard_normal((waves.shape[0], self.mels, self.FRAMES)) * 0.5
        return self.ctranslate2.StorageView.from_array(features.astype(np.float32))

    def __call__(self, inputs) -> None:
        self.model.encode(inputs, to_cpu=True)


def tensorrt_runner(bench_model: BenchModel):
    """TensorRT is reported, never timed here: no machine of this project can install it, so engine
    timing is left to `trtexec` on the target (build_engine.sh, written by `usad export --format engine`)."""
    try:
        import tensorrt  # noqa: F401
    except ImportError as err:
        raise FormatUnavailable("tensorrt is not importable here (pip install usad-edge[tensorrt])") from err
    raise FormatUnavailable("engine timing is not implemented: use trtexec from build_engine.sh on the target")


def make_runner(fmt: str, bench_model: BenchModel, threads: int | None, peer: str | Path | None = None):
    """The runner of one format, or FormatUnavailable. ``peer``: the converted CTranslate2 dir (peer formats)."""
    if fmt in PEER_FORMATS:
        if peer is None:
            raise FormatUnavailable("no peer dir given (usad bench latency --peer DIR)")
        return Ct2WhisperRunner(Path(peer) / PEER_FORMATS[fmt], threads)
    cuda = torch.cuda.is_available()
    if fmt in CUDA_FORMATS and not cuda:
        raise FormatUnavailable("needs a CUDA GPU")
    if fmt in FORMAT_FILES:
        path = bench_model.file_for(fmt)
        if path is None:
            raise FormatUnavailable(f"preset without a model dir: no {FORMAT_FILES[fmt]} (bench an exported model dir)")
        if not path.is_file():
            raise FormatUnavailable(f"no {path} (run `usad export{' --int8' if fmt == 'onnx-int8' else ''}`)")
        return OnnxRunner(path, threads)
    if fmt == "tensorrt":
        return tensorrt_runner(bench_model)
    # Each torch runner gets its own copy so a device move or compile never touches the others.
    import copy

    model = copy.deepcopy(bench_model.model)
    if fmt == "torch-fp32":
        return TorchRunner(model, "cpu")
    if fmt == "torch-compiled":
        return TorchRunner(model, "cpu", compiled=True)
    if fmt == "cuda-fp32":
        return TorchRunner(model, "cuda")
    if fmt == "cuda-bf16-graphs":
        return TorchRunner(model, "cuda", compiled=True, bf16=True)
    raise ValueError(f"unknown format {fmt!r}; known: {', '.join(ALL_FORMATS)}")
