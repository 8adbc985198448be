"""Compression of a trained USAD encoder into smaller presets: init strategies + distillation."""

from usad.compress.init import STRATEGIES, CompressInitError, init_student, kept_blocks
from usad.compress.run import build_recipe, calibration_clips, compress, student_config

__all__ = ["STRATEGIES", "CompressInitError", "build_recipe", "calibration_clips", "compress", "init_student",
           "kept_blocks", "student_config"]
