"""Shared, built-once exports of a seeded usad-tiny for the export/quantize/runtime/tensorrt tests.

Plain cached functions rather than fixtures so every test module reuses the same files in one
pytest process (the dynamo export alone takes ~15 s on the 2-core CI machine).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from usad.bench.harness import time_cell

SHARED_AUDIO = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FAST_QUANT = {"crop_seconds": 3.0, "calibration_crops": 12, "heldout_crops": 4, "latency_seconds": 2.0,
              "time_cell": time_cell}


@functools.cache
def work_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="usad-export-tests-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@functools.cache
def calibration_audio() -> list[Path]:
    return [SHARED_AUDIO / "fsdd" / "recordings"]


@functools.cache
def tiny_dir() -> Path:
    """A saved seeded usad-tiny model dir (weights only)."""
    import torch

    import usad

    torch.manual_seed(0)
    return usad.save(usad.create_model("usad-tiny"), work_dir() / "tiny")


@functools.cache
def exported_dir() -> Path:
    """tiny exported three ways, each with INT8: the fused graph (every recipe tried, timed and kept), then the
    plain graph at opset 18 and 17 (static INT8, TensorRT checks, build_engine.sh)."""
    from usad.export.pipeline import export_model_dir

    source = tiny_dir()
    target = work_dir() / "tiny-exported"
    shutil.copytree(source, target)
    export_model_dir(target, int8=True, calibration=calibration_audio(),
                     quantize_options=FAST_QUANT | {"keep_candidates": True}, log=lambda message: None)
    for opset in (18, 17):
        export_model_dir(target, opset=opset, graph="plain", int8=True, engine=True, calibration=calibration_audio(),
                         quantize_options=FAST_QUANT | {"recipes": ("static",)}, log=lambda message: None)
    return target
