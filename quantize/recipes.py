"""INT8 recipes: ways to quantize one float encoder graph, among which the exporter chooses by measurement.

| recipe | Conv (subsampler, positional encoder) | weight MatMuls | calibration |
|---|---|---|---|
| static | static QDQ, per-channel | static QDQ, per-channel | yes |
| dynamic | float | dynamic INT8 (``DynamicQuantizeMatMul``: activations quantized per call) | no |
| mixed | static QDQ, per-channel | dynamic INT8 | Conv inputs only |

The fbank and attention's activation-by-activation products stay float in every recipe (``usad.quantize.
roles``). Dynamic quantization never touches Conv: ORT's dynamic ConvInteger was 2.4x slower than float
here. Weights are 7-bit in every CPU recipe (``usad.quantize.static``: the same integers on every x86 kernel).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from usad.onnx_conventions import INT8_RECIPES
from usad.quantize.static import copy_metadata, quantize_nodes

DYNAMIC_OPS = ("MatMul",)


@dataclass(frozen=True)
class Recipe:
    name: str
    static_ops: tuple[str, ...]  # op types quantized with static QDQ
    dynamic_ops: tuple[str, ...]  # op types quantized dynamically

    def split(self, nodes: Sequence[str], op_types: dict[str, str]) -> tuple[list[str], list[str]]:
        """(static nodes, dynamic nodes) of ``nodes`` under this recipe; the others stay float."""
        static = [n for n in nodes if op_types[n] in self.static_ops]
        dynamic = [n for n in nodes if op_types[n] in self.dynamic_ops]
        return static, dynamic


RECIPES = {
    "static": Recipe("static", ("Conv", "MatMul", "Gemm"), ()),
    "dynamic": Recipe("dynamic", (), DYNAMIC_OPS),
    "mixed": Recipe("mixed", ("Conv", "Gemm"), DYNAMIC_OPS),
}
assert tuple(RECIPES) == INT8_RECIPES  # the file names of usad.onnx_conventions follow these


def quantize_dynamic_nodes(float_path: str | Path, out_path: str | Path, nodes: Sequence[str]) -> Path:
    """Dynamic INT8 of exactly ``nodes`` (weight MatMuls): per-channel 7-bit weights, u8 activations per call."""
    logging.getLogger().setLevel(logging.ERROR)  # "please check if the model is already quantized" on QDQ input
    quantize_dynamic(str(float_path), str(out_path), op_types_to_quantize=list(DYNAMIC_OPS), per_channel=True,
                     reduce_range=True, weight_type=QuantType.QInt8, nodes_to_quantize=list(nodes),
                     extra_options={"MatMulConstBOnly": True})
    copy_metadata(float_path, out_path)
    return Path(out_path)


def build_recipe(recipe: Recipe, float_path: Path, out_path: Path, nodes: Sequence[str], op_types: dict[str, str],
                 feeds: Sequence[dict[str, np.ndarray]], work_dir: Path) -> Path:
    """Write ``recipe`` applied to ``nodes`` of ``float_path`` to ``out_path``.

    Static calibration is cached in ``work_dir`` (``calibration_cache``), so retries with fewer nodes and the
    other recipes skip it."""
    static, dynamic = recipe.split(nodes, op_types)
    if not static and not dynamic:
        raise ValueError(f"recipe {recipe.name}: no node to quantize")
    source = float_path
    if static:
        source = out_path.with_name(out_path.stem + ".static-part.onnx") if dynamic else out_path
        quantize_nodes(float_path, source, static, feeds, calibration_cache(work_dir, recipe))
    if dynamic:
        quantize_dynamic_nodes(source, out_path, dynamic)
        if source != float_path:
            source.unlink()
    return out_path


def calibration_cache(work_dir: Path, recipe: Recipe | None = None) -> Path:
    """The calibration ranges a static part reads: the full one (every Conv/MatMul input, written by the static
    recipe or the TensorRT twin, ``recipe`` None) serves all; a recipe that calibrates less keeps its own until
    the full one exists (ranges are per tensor, so a superset serves any subset)."""
    full = work_dir / "calibration.full.json"
    if recipe is None or recipe.static_ops == RECIPES["static"].static_ops or full.is_file():
        return full
    return work_dir / f"calibration.{recipe.name}.json"


def op_types(model: onnx.ModelProto) -> dict[str, str]:
    return {node.name: node.op_type for node in model.graph.node}
