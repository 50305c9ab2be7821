"""torch runtime: runs an ONNX model through our own ONNX->torch converter on CPU or CUDA.

Where it earns its place: fp16 on CUDA (`module.half()`, with no extra package or model file)
and hosts that have torch but neither onnxruntime nor OpenVINO. On CPU it is the slowest runtime
(docs/detect_table.md). 4-d weights and inputs use the channels-last layout on CPU, which oneDNN
convolutions run faster (about 15% for YOLOX-nano at 640 on one thread here).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from streamflow_workers.device import resolve_device
from streamflow_workers.runtimes.common import fp16_fallback, threads
from streamflow_workers.runtimes.onnx_graph import load_onnx
from streamflow_workers.runtimes.onnx_to_torch import OnnxModule, convert

log = logging.getLogger(__name__)


class TorchRuntime:
    """A converted module on a device; `infer` moves the blob there and the output back."""

    name = "torch"

    def __init__(self, module: OnnxModule, device: str, model_path: Path, precision: str = "fp32"):
        self.device = device
        self.model_path = model_path
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self.memory_format = torch.channels_last if device == "cpu" else torch.contiguous_format
        self.module = module.to(device=device, dtype=self.dtype, memory_format=self.memory_format)

    def infer(self, blob: np.ndarray) -> np.ndarray:
        """One forward pass over the whole batch (any N, any H and W the graph allows)."""
        if blob.ndim != 4:
            raise ValueError(f"expected an NCHW blob, got shape {blob.shape}")
        x = torch.from_numpy(np.ascontiguousarray(blob, dtype=np.float32)).to(self.device, self.dtype)
        x = x.contiguous(memory_format=self.memory_format)
        with torch.inference_mode():
            y = self.module(x)
        return y.float().cpu().numpy()


def load(model_path: str | Path, device: str = "cpu", precision: str = "fp32") -> TorchRuntime:
    """Convert an ONNX file to a torch module on `device` (CUDA without a GPU falls back to CPU)."""
    path = Path(model_path)
    resolved = resolve_device(device)
    if threads() is not None:
        torch.set_num_threads(threads())
    return TorchRuntime(convert(load_onnx(path)), resolved, path, fp16_fallback(precision, resolved, log))
