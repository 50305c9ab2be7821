"""Model runtimes with one interface: `load(model_path, device, precision)` and `runtime.infer(blob)`.

opencv (cv2.dnn), torch (our ONNX->torch converter), onnxruntime and openvino all run the same
ONNX file. Thread counts are process-wide: `set_threads` bounds every runtime a worker loads.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from streamflow_workers.errors import ModelLoadError

RUNTIMES = ("opencv", "torch", "onnxruntime", "openvino")
_threads: list[int | None] = [None]


class Runtime(Protocol):
    """What detectors and embedders need from a runtime."""

    name: str
    device: str

    def infer(self, blob: np.ndarray) -> np.ndarray: ...


def set_threads(threads: int | None) -> None:
    """Intra-op threads for runtimes loaded from now on (None: the runtime's default)."""
    _threads[0] = threads
    import cv2
    if threads is not None:
        cv2.setNumThreads(threads)


def threads() -> int | None:
    """The thread count set by `set_threads`, if any."""
    return _threads[0]


def load_runtime(kind: str, model_path: str | Path, device: str = "cpu", precision: str = "fp32") -> Runtime:
    """Load `model_path` on the runtime named `kind`; fp16 takes effect on a GPU only."""
    if kind == "opencv":
        from streamflow_workers.runtimes import opencv_dnn
        return opencv_dnn.load(model_path, device, precision)
    if kind == "torch":
        from streamflow_workers.runtimes import torch_runtime
        return torch_runtime.load(model_path, device, precision)
    if kind == "onnxruntime":
        from streamflow_workers.runtimes import onnxruntime_rt
        return onnxruntime_rt.load(model_path, device, precision)
    if kind == "openvino":
        from streamflow_workers.runtimes import openvino_rt
        return openvino_rt.load(model_path, device, precision)
    raise ModelLoadError(f"unknown runtime {kind!r} (known: {', '.join(RUNTIMES)})")


def runtime_module(name: str):
    """Import an optional runtime package, or say in one line how to install it."""
    import importlib
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ModelLoadError(f"runtime {name} is not installed (pip install {name})") from None


def fp16_fallback(precision: str, device: str, log) -> str:
    """fp16 runs on a GPU; on a CPU the runtime says so in one line and runs fp32."""
    if precision == "fp16" and not device.startswith("cuda"):
        log.warning("fp16 runs on a GPU only; running fp32 on %s", device)
        return "fp32"
    return precision
