"""Static QDQ INT8 of an exported encoder with ONNX Runtime's quantizer.

Per-channel symmetric INT8 weights. Activations: asymmetric UINT8 for ONNX Runtime on CPU (U8S8:
x86 VNNI kernels, and ORT fuses every Conv into QLinearConv only then; measured ~15% faster than
S8S8 here), or symmetric INT8 with zero points 0 for TensorRT, whose explicit quantization
requires that.

CPU weights use 7 bits (``reduce_range``): x86 CPUs without AVX512-VNNI / AVX-VNNI (AMD Zen 2/3, Intel
before Cascade Lake) run U8S8 through ``vpmaddubsw``, which adds two u8 x s8 products into a saturating
int16, and 255 x 127 x 2 overflows it. A full-range file that passes the guard on a VNNI machine then
loses accuracy on those: the test fixture's usad-tiny INT8 keeps per-frame cosine 0.9993 against torch here
(Zen 4, VNNI) and falls to 0.966 at 1 s and 0.9406 at 30 s on an emulated EPYC Milan (``qemu-x86_64 -cpu
EPYC-Milan-v1``: AVX2, no VNNI), the figure of the guard test that failed in issue 14 on such machines.
With 7-bit weights every product pair fits (255 x 64 x 2 < 32767): the same file gives 0.99922 on both.

Only the nodes passed in are quantized: by default the weight Conv/MatMuls outside
the fbank (see ``usad.quantize.roles``). Calibration runs once into a cache file, so retries with
other node sets, and the TensorRT variant, skip it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

from usad.quantize.roles import QUANTIZABLE_OPS, ensure_node_names, graph_roles

# target -> (activation type, reduce_range: 7-bit weights, extra options)
ACTIVATIONS = {
    "cpu": (QuantType.QUInt8, True, {"WeightSymmetric": True}),
    "tensorrt": (QuantType.QInt8, False, {"WeightSymmetric": True, "ActivationSymmetric": True}),
}
CPU_WEIGHT_RANGE = (-64, 64)  # the quantizer's reduced INT8 range


def crop_feeds(crops: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Fixed-length crops as encoder inputs (waveforms (1, S), lengths (1,)), one feed each."""
    return [{"waveforms": c[None].astype(np.float32), "lengths": np.array([c.size], dtype=np.int64)} for c in crops]


class FeedReader(CalibrationDataReader):
    """Feeds calibration inputs one at a time (``crop_feeds``, or a streaming step's captured feeds)."""

    def __init__(self, feeds: Sequence[dict[str, np.ndarray]]):
        self.feeds = list(feeds)
        self.index = 0

    def get_next(self) -> dict | None:
        if self.index >= len(self.feeds):
            return None
        self.index += 1
        return self.feeds[self.index - 1]

    def rewind(self) -> None:
        self.index = 0

    def __len__(self) -> int:
        return len(self.feeds)


def default_nodes(model: onnx.ModelProto) -> list[str]:
    """The INT8 candidates: weight Conv/MatMul/Gemm outside the fbank."""
    return graph_roles(model).weight


def prepare(fp32_path: str | Path, work_dir: str | Path) -> Path:
    """A copy of the float model with unique node names, which the quantizer addresses nodes by."""
    model = ensure_node_names(onnx.load(fp32_path))
    out = Path(work_dir) / "float.onnx"
    onnx.save(model, out)
    return out


def quantize_nodes(float_path: str | Path, out_path: str | Path, nodes: Sequence[str],
                   feeds: Sequence[dict[str, np.ndarray]], cache_path: str | Path, target: str = "cpu") -> Path:
    """Write a QDQ model of ``float_path`` with exactly ``nodes`` quantized, activations for ``target``
    ("cpu" or "tensorrt", see ``ACTIVATIONS``).

    The first call calibrates on ``feeds`` (MinMax; ``crop_feeds`` for an encoder) into ``cache_path``;
    later calls reuse it.
    """
    activation_type, reduce_range, extra_options = ACTIVATIONS[target]
    if not nodes:
        raise ValueError("no nodes to quantize")
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer logs "consider pre-processing" per call
    quantize_static(
        str(float_path), str(out_path), FeedReader(feeds), quant_format=QuantFormat.QDQ,
        op_types_to_quantize=list(QUANTIZABLE_OPS), per_channel=True, reduce_range=reduce_range,
        activation_type=activation_type, weight_type=QuantType.QInt8, nodes_to_quantize=list(nodes),
        calibrate_method=CalibrationMethod.MinMax, extra_options=dict(extra_options),
        calibration_cache_path=str(cache_path),
    )
    copy_metadata(float_path, out_path)
    return Path(out_path)


def copy_metadata(source: str | Path, target: str | Path) -> None:
    src, dst = onnx.load(source), onnx.load(target)
    del dst.metadata_props[:]
    for prop in src.metadata_props:
        dst.metadata_props.add(key=prop.key, value=prop.value)
    dst.producer_name = src.producer_name
    onnx.save(dst, target)


def quantized_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the Conv/MatMul/Gemm nodes that run INT8: static QDQ ones (weight through a DequantizeLinear)
    and dynamic ones (the quantizer's MatMulInteger, named after the float node plus "_quant")."""
    dq_outputs = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    static = [n.name for n in model.graph.node
              if n.op_type in QUANTIZABLE_OPS and any(i in dq_outputs for i in n.input[:2])]
    return static + [n.name.removesuffix("_quant") for n in model.graph.node if n.op_type == "MatMulInteger"]


def int8_weight_peak(model: onnx.ModelProto) -> int:
    """The largest |integer| of the INT8 weights: <= 64 (7 bits) means no U8S8 kernel can saturate."""
    from onnx import numpy_helper

    peaks = [int(np.abs(numpy_helper.to_array(i).astype(np.int32)).max()) for i in model.graph.initializer
             if i.data_type == onnx.TensorProto.INT8 and np.prod(i.dims) > 1]
    return max(peaks, default=0)
