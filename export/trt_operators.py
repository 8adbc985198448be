"""ONNX operators TensorRT's ONNX parser supports, per target, copied from onnx-tensorrt's
``docs/operators.md`` (rows marked Y). Sources:

- TensorRT 10: https://github.com/onnx/onnx-tensorrt/blob/main/docs/operators.md
  ("TensorRT 10.15 supports operators in the inclusive range of opset 9 to opset 24").
  JetPack 6.1/6.2 ship TensorRT 10.3, which predates a few rows here (e.g. Attention,
  RotaryEmbedding, RMSNormalization, TensorScatter): ``check_operators`` reports every op that
  is not also in the 8.5 list as ``newer_than_8_5`` so those can be checked against 10.3.
- TensorRT 8.5 (JetPack 5.1): https://github.com/onnx/onnx-tensorrt/blob/release/8.5-GA/docs/operators.md
  ("TensorRT 8.5 supports operators up to Opset 17"). LayerNormalization is N there (added in 8.6,
  JetPack 6.0), which is why the opset-17 export writes LayerNorm as primitive ops.
"""

from __future__ import annotations

from collections import Counter

import onnx

TRT_8_5 = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil Celu Clip
Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div Dropout
Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gemm GlobalAveragePool
GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample GRU HardSwish HardSigmoid Identity If ImageScaler
InstanceNormalization IsNaN LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul
Max MaxPool Mean MeanVarianceNormalization Min Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad
ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform RandomUniformLike Range
Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum
ReduceSumSquare Relu Reshape Resize ReverseSequence RNN RoiAlign Round ScaledTanh Scan Scatter ScatterElements
ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt
Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

TRT_10 = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh Attention AveragePool BatchNormalization BlackmanWindow
Cast CastLike Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DeformConv
DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather
GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample
GroupNormalization GRU HammingWindow HannWindow HardSigmoid HardSwish Hardmax Identity If ImageScaler
InstanceNormalization IsInf IsNaN LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM
LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mish Mod Mul Neg NonMaxSuppression
NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform
RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin
ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RMSNormalization RNN RoiAlign
RotaryEmbedding Round STFT ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin
Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh TensorScatter
ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

TARGETS = {
    "tensorrt-10": {"ops": TRT_10, "max_opset": 24, "jetpack": "JetPack 6.1/6.2 (TensorRT 10.3) and later"},
    "tensorrt-8.5": {"ops": TRT_8_5, "max_opset": 17, "jetpack": "JetPack 5.1 (TensorRT 8.5) and 6.0 (8.6)"},
}


def check_operators(model: onnx.ModelProto, target: str) -> dict:
    """Ops of the graph missing from ``target``'s supported list, and the opset against its limit."""
    spec = TARGETS[target]
    counts = Counter(node.op_type for node in model.graph.node if node.domain in ("", "ai.onnx"))
    custom = sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node if n.domain not in ("", "ai.onnx")})
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    unsupported = sorted(op for op in counts if op not in spec["ops"]) + custom
    return {"target": target, "jetpack": spec["jetpack"], "opset": opset, "max_opset": spec["max_opset"],
            "operators": dict(sorted(counts.items())), "unsupported": unsupported,
            "newer_than_8_5": sorted(op for op in counts if op not in TRT_8_5),
            "passed": not unsupported and opset <= spec["max_opset"]}
