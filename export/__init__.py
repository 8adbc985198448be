"""Export of USAD encoders: ONNX (parity-checked against torch), then INT8 (``usad.quantize``) and
TensorRT (``usad.export.tensorrt``). ``export_model_dir`` is what ``usad export`` runs."""

from usad.export.onnx_export import ExportError, export_onnx
from usad.export.parity import check_parity
from usad.export.pipeline import export_model_dir

__all__ = ["ExportError", "check_parity", "export_model_dir", "export_onnx"]
