"""INT8 for USAD encoders: ONNX Runtime static QDQ with real-audio calibration and an accuracy guard."""

from usad.quantize.calibration import CalibrationError, calibration_and_heldout
from usad.quantize.guard import GuardReport, QuantizationRefused, quantize_guarded

__all__ = ["CalibrationError", "GuardReport", "QuantizationRefused", "calibration_and_heldout",
           "quantize_guarded"]
