"""OpenCV DNN runtime: runs an ONNX model with cv2.dnn on CPU (or CUDA when OpenCV is built with it).

Batch N runs as one forward pass: the graph's batch axis is freed first (see onnx_graph), so
exports that froze batch 1 into a Reshape give per-image outputs instead of mixed ones.
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from workers.errors import ModelLoadError
from workers.runtimes.onnx_graph import free_batch_axis, load_onnx

log = logging.getLogger(__name__)


def _cuda_devices() -> int:
    try:
        return cv2.cuda.getCudaEnabledDeviceCount()
    except (cv2.error, AttributeError):
        return 0


class OpenCVRuntime:
    """A loaded cv2.dnn network; `infer` takes an NCHW float32 blob and returns the raw output."""

    name = "opencv"

    def __init__(self, net: cv2.dnn.Net, device: str, model_path: Path):
        self.net = net
        self.device = device
        self.model_path = model_path

    def infer(self, blob: np.ndarray) -> np.ndarray:
        """One forward pass over the whole batch; returns the graph's single output as float32."""
        if blob.ndim != 4:
            raise ValueError(f"expected an NCHW blob, got shape {blob.shape}")
        self.net.setInput(np.ascontiguousarray(blob, dtype=np.float32))
        return np.asarray(self.net.forward(), dtype=np.float32)


def load(model_path: str | Path, device: str = "cpu") -> OpenCVRuntime:
    """Load an ONNX model into cv2.dnn; a CUDA request without a CUDA build warns and uses CPU."""
    path = Path(model_path)
    model = free_batch_axis(load_onnx(path))
    try:
        net = cv2.dnn.readNetFromONNX(np.frombuffer(model.SerializeToString(), dtype=np.uint8))
    except cv2.error as exc:
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        raise ModelLoadError(f"cannot load model {path} with OpenCV DNN: {lines[-1].strip() if lines else exc}") from None
    resolved = "cpu"
    if device.startswith("cuda"):
        if _cuda_devices() > 0:
            net.setPreferableBackend(cv2.dnn.DNN_BACKEND_CUDA)
            net.setPreferableTarget(cv2.dnn.DNN_TARGET_CUDA)
            resolved = device
        else:
            log.warning("device %s requested but OpenCV has no CUDA device; running on cpu", device)
    return OpenCVRuntime(net, resolved, path)
