"""Model runtimes with one interface: `load(model_path, device, precision)` and `runtime.infer(blob)`.

opencv (cv2.dnn), torch (our ONNX->torch converter), onnxruntime and openvino all run the same
ONNX file. Thread counts are process-wide: `set_threads` bounds every runtime a worker loads.
"""
from __future__ import annotations

from pathlib import Path

from streamflow_workers.errors import ModelLoadError
from streamflow_workers.runtimes.common import Runtime, fp16_fallback, runtime_module, set_threads, threads

RUNTIMES = ("opencv", "torch", "onnxruntime", "openvino")
__all__ = ["RUNTIMES", "Runtime", "fp16_fallback", "load_runtime", "runtime_module", "set_threads", "threads"]


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
