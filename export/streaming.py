"""``usad export --stream``: the stateful chunk step (usad.stream_step) as ONNX with explicit caches,
parity-checked against the masked full-sequence torch forward, and accuracy-guarded INT8.

Files: ``model.stream.onnx`` and ``model.stream.int8.onnx`` beside the model's weights; figures in
``export.json`` under ``files``. Inputs ``audio`` (1, samples: dynamic, (C + R) or C frames of
hop), ``start_frame``, ``valid_frames`` and the caches; outputs ``hidden_states`` (1, layers, C, D)
and ``next_<cache>`` for each cache (their names and shapes: usad.stream_step). The INT8 guard is
today's (usad.quantize): calibration on the feeds of real audio streamed through the fp32 step,
embedding cosine on held-out audio streamed through both.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from usad.config import SAMPLE_RATE
from usad.export.onnx_export import ExportError, _write_metadata, resolve_layers
from usad.export.parity import ParityCase, compare_outputs
from usad.model import UsadEncoder
from usad.onnx_conventions import DEFAULT_OPSET, STREAM_FILES, cpu_session
from usad.quantize.fidelity import Outputs
from usad.quantize.guard import EncoderIO
from usad.stream_step import StreamStep
from usad.streaming import CONTROL_INPUTS, FrameStream, OrtStepRunner, algorithmic_latency_ms, next_name

STREAM_PARITY_SECONDS = (3.7, 12.3, 30.0)
STREAM_MAX_ABS = 1e-4  # the bar for streamed vs masked full-sequence outputs
STREAM_MIN_COSINE = 0.99999
MAX_CALIBRATION_FEEDS = 160  # steps kept for calibration: ORT's calibrator holds every feed's activations


def stream_metadata(model: UsadEncoder) -> dict:
    config = model.config
    return {"usad_stream": {"chunk_frames": config.chunk_frames, "left_frames": config.left_frames,
                            "lookahead_frames": config.lookahead_frames,
                            "algorithmic_latency_ms": algorithmic_latency_ms(config)}}


def export_stream_onnx(model: UsadEncoder, path: str | Path, layers: list[int] | None = None,
                       opset: int = DEFAULT_OPSET, metadata: dict | None = None) -> Path:
    """Write the chunk step of streaming ``model`` as ONNX (dynamo exporter); returns ``path``."""
    if opset < DEFAULT_OPSET:
        raise ExportError(f"the streaming export needs the dynamo exporter (opset >= {DEFAULT_OPSET}), got {opset}")
    model = model.eval().cpu()
    layers = resolve_layers(layers, model.config.depth)
    try:
        step = StreamStep(model, layers).eval()
    except ValueError as err:
        raise ExportError(str(err)) from err
    config, path = model.config, Path(path)
    shapes = step.state_shapes()
    states = [torch.zeros(shape) for shape in shapes.values()]
    states[0] = torch.randn(shapes["fbank_overlap"]) * 0.1
    frames = torch.export.Dim("frames", min=1, max=4 * (config.chunk_frames + config.lookahead_frames))
    example = (torch.randn(1, (config.chunk_frames + config.lookahead_frames) * config.samples_per_frame) * 0.1,
               torch.tensor([3 * config.chunk_frames]), torch.tensor([config.chunk_frames]), *states)
    names = CONTROL_INPUTS + step.state_names
    dynamic = {name: None for name in names} | {"audio": {1: frames * config.samples_per_frame}}
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(step, example, tmp, dynamo=True, opset_version=opset, input_names=names,
                          output_names=["hidden_states", *(next_name(s) for s in step.state_names)],
                          dynamic_shapes=dynamic, external_data=False, verbose=False)
    _write_metadata(tmp, model, layers, False, opset, "plain", stream_metadata(model) | (metadata or {}))
    tmp.replace(path)
    return path


def stream_audio(run: Callable, state_shapes: dict, config, layers: Sequence[int], audio: np.ndarray,
                 seed: int | None = 0) -> np.ndarray:
    """Every frame (layers, T, D) of ``audio`` streamed through ``run``: pushes of random sizes
    (seeded; up to 1.5 chunks) or, with ``seed`` None, one push of the whole."""
    stream = FrameStream(run, state_shapes, config, layers)
    if seed is None:
        parts = [stream.push(audio)]
    else:
        rng, position, parts = np.random.default_rng(seed), 0, []
        largest = int(1.5 * config.chunk_frames * config.samples_per_frame)
        while position < audio.size:
            size = int(rng.integers(1, largest))
            parts.append(stream.push(audio[position:position + size]))
            position += size
    parts.append(stream.close())
    return np.concatenate([p.hidden for p in parts], 1)


def check_stream_parity(model: UsadEncoder, onnx_path: str | Path, layers: list[int], clips: Sequence[np.ndarray],
                        threads: int | None = None) -> list[ParityCase]:
    """Each clip streamed through the ONNX step in random-size pushes vs the masked full-sequence
    torch forward of the whole clip, over every frame and exported layer."""
    runner = OrtStepRunner(cpu_session(onnx_path, threads))
    cases = []
    for clip in clips:
        with torch.no_grad():
            out = model.eval()(torch.from_numpy(clip)[None])
        reference = torch.stack([out.hidden_states[i][0] for i in layers]).numpy()  # (layers, T, D)
        streamed = stream_audio(runner, runner.state_shapes, model.config, range(len(layers)), clip)
        if streamed.shape != reference.shape:
            cases.append(ParityCase(f"{clip.size / SAMPLE_RATE:g}s", float("inf"), -1.0, False))
            continue
        max_abs, cosine = compare_outputs(reference[None], streamed[None], np.ones((1, reference.shape[1]), bool))
        cases.append(ParityCase(f"{clip.size / SAMPLE_RATE:g}s", max_abs, cosine, True))
    return cases


def parity_record(cases: list[ParityCase], audio_kind: str) -> dict:
    passed = all(c.ok(STREAM_MAX_ABS, STREAM_MIN_COSINE) for c in cases)
    return {"reference": "masked full-sequence torch forward (usad.stream_mask), fp32", "input": audio_kind,
            "pushes": "random sizes, seeded", "tolerance": {"max_abs_error": STREAM_MAX_ABS,
                                                            "min_cosine": STREAM_MIN_COSINE},
            "passed": passed, "cases": [asdict(c) for c in cases]}


class StreamIO(EncoderIO):
    """The INT8 guard's view of a chunk step: calibration feeds are the steps of real crops streamed
    through the fp32 step; a crop's outputs are its streamed frames of each layer."""

    def __init__(self, fp32_path: str | Path, config, layers: int):
        self.fp32_path, self.config, self.layers = fp32_path, config, range(layers)

    def calibration_feeds(self, crops: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        runner = OrtStepRunner(cpu_session(self.fp32_path))
        feeds: list[dict[str, np.ndarray]] = []

        def capture(step_feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            feeds.append(step_feeds)
            return runner(step_feeds)

        for crop in crops:
            stream_audio(capture, runner.state_shapes, self.config, self.layers, crop, seed=None)
        stride = max(1, -(-len(feeds) // MAX_CALIBRATION_FEEDS))
        return feeds[::stride]

    def outputs(self, session, crops: Sequence[np.ndarray]) -> Outputs:
        runner = OrtStepRunner(session)
        frames = [stream_audio(runner, runner.state_shapes, self.config, self.layers, crop, seed=None)
                  for crop in crops]  # (L, T, D) each, every frame real
        return Outputs(frames, [np.ones(f.shape[1], dtype=bool) for f in frames], pooled=False)




def _real_clips(calibration: Sequence[str | Path] | None, seconds: Sequence[float]) -> tuple[list[np.ndarray], str]:
    """``usad export``'s parity audio (the calibration's, else seeded noise) cut to each of ``seconds``."""
    from usad.export.pipeline import parity_audio

    audio, kind = parity_audio(calibration)
    if audio is None or audio.size < max(seconds) * SAMPLE_RATE:
        audio = np.random.default_rng(0).standard_normal(int(max(seconds) * SAMPLE_RATE)) * 0.1
        kind = "seeded noise (pass --calibration with over a minute of real audio)"
    return [audio[: int(s * SAMPLE_RATE)].astype(np.float32) for s in seconds], kind


def export_stream_dir(model_dir: str | Path, int8: bool = False, layers: list[int] | None = None,
                      calibration: Sequence[str | Path] | None = None, force: bool = False,
                      min_cosine: float | None = None, quantize_options: dict | None = None,
                      parity_seconds: Sequence[float] = STREAM_PARITY_SECONDS,
                      log: Callable[[str], None] = print) -> dict:
    """Write ``model.stream.onnx`` (and the guarded ``model.stream.int8.onnx``) into a streaming model dir.

    Raises ``ExportError`` when streamed outputs leave the 1e-4 bar (the file is removed, the figures
    kept in export.json) and ``usad.quantize.QuantizationRefused`` when INT8 fails its guard."""
    from usad.export.pipeline import update_export_json
    from usad.modeldir import load
    from usad.quantize import QuantizationRefused, quantize_guarded
    from usad.quantize.guard import DEFAULT_MIN_COSINE

    model_dir = Path(model_dir)
    model = load(model_dir)
    layers = resolve_layers(layers, model.config.depth)
    fp32_path, int8_path = model_dir / STREAM_FILES["fp32"], model_dir / STREAM_FILES["int8"]
    export_stream_onnx(model, fp32_path, layers)
    clips, kind = _real_clips(calibration, parity_seconds)
    cases = check_stream_parity(model, fp32_path, layers, clips)
    for case in cases:
        log(f"  stream parity {case.name:>6}: max abs {case.max_abs_error:.2e}, min cosine {case.min_cosine:.7f}")
    entry = {"opset": DEFAULT_OPSET, "layers": layers, "size_bytes": fp32_path.stat().st_size,
             "parity": parity_record(cases, kind)} | stream_metadata(model)
    if not entry["parity"]["passed"]:
        fp32_path.unlink()
        update_export_json(model_dir, {"files": {fp32_path.name: entry | {"removed": "parity out of tolerance"}}})
        raise ExportError(f"streamed outputs differ from the masked forward by more than {STREAM_MAX_ABS:g}: "
                          + "; ".join(f"{c.name}: max abs {c.max_abs_error:.3e}" for c in cases))
    record = update_export_json(model_dir, {"files": {fp32_path.name: entry}})
    log(f"wrote {fp32_path}: algorithmic latency {algorithmic_latency_ms(model.config):.0f} ms")
    if not int8:
        return record
    graph_io = StreamIO(fp32_path, model.config, len(layers))
    try:
        report = quantize_guarded(fp32_path, int8_path, calibration, min_cosine=min_cosine or DEFAULT_MIN_COSINE,
                                  force=force, graph_io=graph_io, log=log,
                                  # the latency pick times encoder graphs: the chunk step keeps fp32 as its default
                                  **(quantize_options or {}) | {"time_cell": None, "keep_candidates": False})
    except QuantizationRefused as err:
        int8_path.unlink(missing_ok=True)
        update_export_json(model_dir, {"files": {int8_path.name: {"refused": str(err), "guard": err.report}}})
        raise
    vs_torch = {c.name: {"max_abs_error": c.max_abs_error, "min_cosine": c.min_cosine}
                for c in check_stream_parity(model, int8_path, layers, clips)}
    size = int8_path.stat().st_size
    log(f"wrote {int8_path} ({size / fp32_path.stat().st_size:.0%} of fp32); excluded: {report.excluded or 'none'}")
    return update_export_json(model_dir, {"files": {int8_path.name: {
        "size_bytes": size, "size_vs_fp32": size / fp32_path.stat().st_size, "guard": report.to_dict(),
        "vs_torch_fp32": vs_torch}}})
