"""The FLOP floor: how fast this machine multiplies matrices, measured in the same run as the bench.

A model's floor latency is its FLOPs for one call divided by the machine's GEMM rate: no runtime
can beat it on this hardware. ``gemm_rate`` measures torch's fp32 (or, on CUDA, bf16) GEMM;
``ort_int8_gemm_rate`` measures ONNX Runtime's MatMulInteger (u8 x s8, the VNNI path that its QDQ
INT8 kernels use). Both report the best of several GEMM shapes, so the floor is a lower bound.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from usad.onnx_conventions import cpu_session

# (M, K, N): a large square GEMM (peak rate) and encoder-shaped ones (10 s at 50 Hz, FFN in and out).
SQUARE = (1024, 1024, 1024)


def encoder_gemm_shapes(dim: int, frames: int = 500) -> list[tuple[int, int, int]]:
    """The shapes of an encoder's widest GEMMs, plus the square one."""
    return [SQUARE, (frames, dim, 4 * dim), (frames, 4 * dim, dim)]


def _best_seconds(fn, min_time: float, max_repeats: int = 200) -> float:
    """Best (least disturbed) wall time of ``fn`` over repeats totalling about ``min_time`` seconds."""
    fn()  # warm-up: allocation, kernel selection
    best, spent, repeats = float("inf"), 0.0, 0
    while (spent < min_time or repeats < 3) and repeats < max_repeats:
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best, spent, repeats = min(best, elapsed), spent + elapsed, repeats + 1
    return best


def gemm_rate(shapes: Sequence[tuple[int, int, int]] = (SQUARE,), threads: int | None = None,
              device: str = "cpu", dtype: torch.dtype = torch.float32, min_time: float = 0.3) -> dict:
    """Torch GEMM rate in GFLOP/s (2*M*K*N per product), best over ``shapes``.

    Returns ``{"gflops": best, "shape": (M, K, N) of the best, "per_shape": {"MxKxN": rate}}``.
    """
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    per_shape = {}
    try:
        for m, k, n in shapes:
            a = torch.randn(m, k, device=device, dtype=dtype)
            b = torch.randn(k, n, device=device, dtype=dtype)
            if device == "cuda":
                def step(a=a, b=b):
                    for _ in range(20):
                        a @ b
                    torch.cuda.synchronize()
                calls = 20
            else:
                def step(a=a, b=b):
                    a @ b
                calls = 1
            per_shape[f"{m}x{k}x{n}"] = 2 * m * k * n * calls / _best_seconds(step, min_time) / 1e9
    finally:
        torch.set_num_threads(previous)
    best = max(per_shape, key=per_shape.get)
    return {"gflops": per_shape[best], "shape": best, "per_shape": per_shape,
            "dtype": str(dtype).removeprefix("torch."), "device": device, "threads": threads or previous}


def _matmul_integer_model(k: int, n: int, seed: int = 0):
    """An ONNX graph ``A (M, K) uint8 -> MatMulInteger(A, W int8 (K, N)) -> int32``."""
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(seed).integers(-127, 128, size=(k, n), dtype=np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "w"], ["y"])], "int8_gemm",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, ["m", k])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, ["m", n])],
        [numpy_helper.from_array(weight, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def ort_int8_gemm_rate(shapes: Sequence[tuple[int, int, int]] = (SQUARE,), threads: int | None = None,
                       min_time: float = 0.3) -> dict:
    """ONNX Runtime int8 GEMM rate (MatMulInteger, u8 activations x s8 weights) in GOP/s, best over ``shapes``."""
    per_shape = {}
    for m, k, n in shapes:
        session = cpu_session(_matmul_integer_model(k, n).SerializeToString(), threads)
        a = np.random.default_rng(1).integers(0, 256, size=(m, k), dtype=np.uint8)
        seconds = _best_seconds(lambda session=session, a=a: session.run(None, {"a": a}), min_time)
        per_shape[f"{m}x{k}x{n}"] = 2 * m * k * n / seconds / 1e9
    best = max(per_shape, key=per_shape.get)
    return {"gops": per_shape[best], "shape": best, "per_shape": per_shape, "op": "MatMulInteger u8s8",
            "threads": threads or "all"}
