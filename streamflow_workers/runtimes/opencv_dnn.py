"""OpenCV DNN runtime: runs an ONNX model with cv2.dnn on CPU (or CUDA when OpenCV is built with it).

Batch N runs as one forward pass: the graph's batch axis is freed first (see onnx_graph). Without
that, cv2.dnn accepts an N-image blob for the shipped YOLOX-nano but its frozen Reshape [1, 85, -1]
returns one (1, N*A, 85) array that interleaves the images; with it, (N, A, 85) equals N single calls.
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from streamflow_workers.device import resolve_device
from streamflow_workers.errors import ModelLoadError
from streamflow_workers.runtimes.common import fp16_fallback
from streamflow_workers.runtimes.onnx_graph import free_batch_axis, load_onnx

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


def load(model_path: str | Path, device: str = "cpu", precision: str = "fp32") -> OpenCVRuntime:
    """Load an ONNX model into cv2.dnn; CUDA without a GPU, or without a CUDA build of OpenCV,
    warns once and runs on CPU. fp16 uses OpenCV's CUDA fp16 target."""
    path = Path(model_path)
    resolved = resolve_device(device)
    model = free_batch_axis(load_onnx(path))
    try:
        net = cv2.dnn.readNetFromONNX(np.frombuffer(model.SerializeToString(), dtype=np.uint8))
    except cv2.error as exc:
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        raise ModelLoadError(f"cannot load model {path} with OpenCV DNN: {lines[-1].strip() if lines else exc}") from None
    if resolved.startswith("cuda"):
        if _cuda_devices() > 0:
            cv2.cuda.setDevice(int(resolved.split(":")[1]))
            net.setPreferableBackend(cv2.dnn.DNN_BACKEND_CUDA)
            net.setPreferableTarget(cv2.dnn.DNN_TARGET_CUDA_FP16 if precision == "fp16" else cv2.dnn.DNN_TARGET_CUDA)
        else:
            log.warning("device %s requested but this OpenCV build has no CUDA support; running on cpu", resolved)
            resolved = "cpu"
    fp16_fallback(precision, resolved, log)
    return OpenCVRuntime(net, resolved, path)
