"""An ONNX Runtime CPU session with a fixed thread count: the one way the bench opens ONNX files
(torch-free, so the memory probe measures a deployment's footprint)."""

from __future__ import annotations

from pathlib import Path


def cpu_session(path: str | Path, threads: int | None = None):
    """``onnxruntime.InferenceSession`` on the CPU provider; ``threads`` intra-op threads (None: one per core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
