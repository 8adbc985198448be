"""Which nodes hurt most when quantized, measured at the encoder's output (leave-one-in).

For each candidate node a copy of the float model gets INT8 quantize-dequantize on that node only
(its activation input per-tensor from the calibration ranges, its weight per-channel, as the QDQ
quantizer does) and the embedding cosine against float is measured on held-out audio. Errors that
only show after a nonlinearity (the mel matmul before the log) are caught, which per-tensor SQNR
is blind to. Each trial builds a session from memory: no re-calibration, no files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization.calibrate import load_tensors_data

INT8_MAX = 127.0


def _fake_quantize_weight(weight: np.ndarray, axis: int) -> np.ndarray:
    """Symmetric per-channel INT8 round trip along ``axis``."""
    reduce = tuple(i for i in range(weight.ndim) if i != axis % weight.ndim)
    scale = np.abs(weight).max(axis=reduce, keepdims=True) / INT8_MAX
    scale = np.where(scale == 0, 1.0, scale)
    return (np.clip(np.round(weight / scale), -INT8_MAX, INT8_MAX) * scale).astype(weight.dtype)


def single_node_qdq(model: onnx.ModelProto, node_name: str, ranges) -> onnx.ModelProto:
    """A copy of float ``model`` with INT8 QDQ on ``node_name`` alone."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    node = next(n for n in graph.node if n.name == node_name)
    initializers = {init.name: init for init in graph.initializer}
    new_nodes = []
    for slot, name in enumerate(node.input[:2]):
        if name in initializers:
            weight = numpy_helper.to_array(initializers[name])
            axis = 0 if node.op_type == "Conv" else -1  # output channels: Conv (O, I, k...), MatMul (K, N)
            fake = numpy_helper.from_array(_fake_quantize_weight(weight, axis), f"{name}_fq_{node_name}")
            graph.initializer.append(fake)
            node.input[slot] = fake.name
        elif name in ranges:
            low, high = (float(np.asarray(v).reshape(-1)[0]) for v in ranges[name].range_value)
            scale = max(abs(low), abs(high), 1e-12) / INT8_MAX
            tag = f"{name}_{node_name}_sens"
            graph.initializer.extend([numpy_helper.from_array(np.array(scale, np.float32), f"{tag}_scale"),
                                      numpy_helper.from_array(np.array(0, np.int8), f"{tag}_zp")])
            new_nodes += [helper.make_node("QuantizeLinear", [name, f"{tag}_scale", f"{tag}_zp"], [f"{tag}_q"]),
                          helper.make_node("DequantizeLinear", [f"{tag}_q", f"{tag}_scale", f"{tag}_zp"],
                                           [f"{tag}_dq"])]
            node.input[slot] = f"{tag}_dq"
    # Insert the Q/DQ pair right before the node to keep the graph topologically sorted.
    position = list(graph.node).index(node)
    for offset, new in enumerate(new_nodes):
        graph.node.insert(position + offset, new)
    return out


def leave_one_in(float_model: onnx.ModelProto, nodes: Sequence[str], cache_path: str,
                 score: Callable[[bytes], float], on_node: Callable[[str], None] | None = None) -> dict[str, float]:
    """Sensitivity of each node: 1 - score (embedding cosine) with only that node quantized."""
    ranges = load_tensors_data(cache_path)
    sensitivity = {}
    for name in nodes:
        sensitivity[name] = 1.0 - score(single_node_qdq(float_model, name, ranges).SerializeToString())
        if on_node:
            on_node(name)
    return dict(sorted(sensitivity.items(), key=lambda kv: -kv[1]))
