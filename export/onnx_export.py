"""Export a UsadEncoder to ONNX: waveform (batch, samples) + lengths in, chosen layers or pooled
embedding + frame mask out; dynamic batch and length; fbank inside the graph, in float.

Two exporters: the dynamo exporter (opset >= 18, the default, for ONNX Runtime and TensorRT >= 10)
and the legacy TorchScript exporter at opset 17 for TensorRT 8.5/8.6 (JetPack 5 and 6.0). Two graph
forms (``usad.onnx_conventions.GRAPHS``): "fused" attention as ONNX Runtime contrib ops
(``usad.export.attention``, dynamo only) or "plain" standard ONNX.
TensorRT 8.5 cannot parse ONNX ``LayerNormalization``, so the legacy export writes LayerNorm as
its primitive ops; the dynamo export keeps the fused op that TensorRT 10 and ORT run faster.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from usad.config import SAMPLE_RATE
from usad.errors import UsadError
from usad.export.module_swap import swapped_forward
from usad.model import UsadEncoder
from usad.onnx_conventions import DEFAULT_OPSET, GRAPHS, LEGACY_OPSET

INPUT_NAMES = ("waveforms", "lengths")
MAX_EXPORT_SAMPLES = SAMPLE_RATE * 3600  # the dynamic length axis' upper bound: one hour


class ExportError(UsadError, RuntimeError):
    """An export that cannot be produced or fails its parity check; the message has the figures."""


class ExportWrapper(nn.Module):
    """(waveforms (B, S), lengths (B,)) -> (hidden_states (B, L, T, D) | embedding (B, L, D), mask (B, T)).

    ``layers`` index ``EncoderOutput.hidden_states`` (0 = positional encoder output, depth = last block).
    """

    def __init__(self, model: UsadEncoder, layers: list[int], pooled: bool):
        super().__init__()
        self.model, self.layers, self.pooled = model, layers, pooled

    def forward(self, waveforms: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        out = self.model(waveforms, lengths)
        if self.pooled:
            return torch.stack([out.pooled(i) for i in self.layers], 1), out.mask
        return torch.stack([out.hidden_states[i] for i in self.layers], 1), out.mask


def output_names(pooled: bool) -> tuple[str, str]:
    return ("embedding" if pooled else "hidden_states", "mask")


def resolve_layers(layers: list[int] | None, depth: int) -> list[int]:
    """Normalise layer indices (negative counts from the end) against depth + 1 hidden states."""
    if layers is None:
        return list(range(depth + 1))
    resolved = [i + depth + 1 if i < 0 else i for i in layers]
    bad = [i for i, r in zip(layers, resolved) if not 0 <= r <= depth]
    if bad:
        raise ExportError(f"layers {bad} out of range: the encoder has hidden states 0..{depth}")
    return resolved


def default_graph(opset: int, streaming: bool = False) -> str:
    """Fused where it can run: the dynamo exporter, and a full-context model (the contrib attention has no
    chunk mask, so a streaming model's full-sequence graph stays plain)."""
    return "fused" if opset >= DEFAULT_OPSET and not streaming else "plain"


def _layer_norm_primitive(self: nn.LayerNorm, x: Tensor) -> Tensor:
    mean = x.mean(-1, keepdim=True)
    centered = x - mean
    y = centered / torch.sqrt((centered * centered).mean(-1, keepdim=True) + self.eps)
    if self.weight is not None:
        y = y * self.weight + self.bias
    return y


def _primitive_layer_norms(model: nn.Module):
    """Temporarily compute every LayerNorm from Reduce/Sub/Div ops (no ONNX LayerNormalization)."""
    return swapped_forward(model, nn.LayerNorm, _layer_norm_primitive)


def export_onnx(model: UsadEncoder, path: str | Path, opset: int = DEFAULT_OPSET, layers: list[int] | None = None,
                pooled: bool = False, metadata: dict | None = None, graph: str | None = None) -> Path:
    """Write ``model`` as ONNX to ``path``; opset 17 uses the legacy exporter, >= 18 the dynamo one.
    ``graph`` "fused" (dynamo only) exports attention as ONNX Runtime contrib ops, "plain" as standard ONNX;
    None: fused where the exporter allows it (opset >= 18), else plain.

    The graph's metadata carries the encoder config, layer list and output kind, so a lone .onnx
    file is self-describing for ``usad.runtime``. GELUs are reordered into the pattern ONNX Runtime
    fuses (``usad.export.graph.canonical_gelu``); the parity check covers the rewritten graph.
    """
    if opset < LEGACY_OPSET:
        raise ExportError(f"opset {opset} is below {LEGACY_OPSET}; TensorRT 8.5+ and ORT targets need >= 17")
    graph = graph or default_graph(opset, model.config.streaming)
    if graph not in GRAPHS or (graph == "fused" and opset < DEFAULT_OPSET):
        raise ExportError(f"graph {graph!r}: choose one of {GRAPHS}; 'fused' needs the dynamo exporter (opset >= 18)")
    if graph == "fused" and model.config.streaming:
        raise ExportError("the fused attention has no chunk mask: export a streaming model with --graph plain")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    layers = resolve_layers(layers, model.config.depth)
    wrapper = ExportWrapper(model, layers, pooled).eval()
    names = output_names(pooled)
    # Two clips of different length so the exporters see a real padded batch.
    example = (torch.randn(2, SAMPLE_RATE * 2) * 0.1, torch.tensor([SAMPLE_RATE * 2, SAMPLE_RATE + 4_321]))
    tmp = path.with_name(path.name + ".tmp")
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notices
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if opset >= DEFAULT_OPSET:
            from usad.export.attention import fused_attention

            batch = torch.export.Dim("batch", min=1, max=1024)
            samples = torch.export.Dim("samples", min=400, max=MAX_EXPORT_SAMPLES)
            with fused_attention(model) if graph == "fused" else contextlib.nullcontext():
                torch.onnx.export(wrapper, example, tmp, dynamo=True, opset_version=opset, input_names=INPUT_NAMES,
                                  output_names=names, external_data=False, verbose=False,
                                  dynamic_shapes={"waveforms": {0: batch, 1: samples}, "lengths": {0: batch}})
        else:
            axes = {"waveforms": {0: "batch", 1: "samples"}, "lengths": {0: "batch"},
                    names[0]: {0: "batch"} | ({} if pooled else {2: "frames"}), "mask": {0: "batch", 1: "frames"}}
            with _primitive_layer_norms(model):
                torch.onnx.export(wrapper, example, tmp, dynamo=False, opset_version=opset, input_names=INPUT_NAMES,
                                  output_names=names, dynamic_axes=axes, do_constant_folding=True)
    _write_metadata(tmp, model, layers, pooled, opset, graph, metadata or {})
    tmp.replace(path)
    return path


def _write_metadata(path: Path, model: UsadEncoder, layers: list[int], pooled: bool, opset: int, graph: str,
                    extra: dict) -> None:
    import onnx

    from usad.export.graph import canonical_gelu

    proto = onnx.load(path)
    canonical_gelu(proto)
    values = {"usad_encoder": json.dumps(model.config.to_dict()), "usad_layers": json.dumps(layers),
              "usad_output": output_names(pooled)[0], "usad_opset": str(opset),
              "usad_exporter": "dynamo" if opset >= DEFAULT_OPSET else "torchscript", "usad_graph": graph,
              **{k: json.dumps(v) for k, v in extra.items()}}
    del proto.metadata_props[:]
    for key, value in values.items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "usad-edge"
    onnx.save(proto, path)
