"""OpenVINO: the ONNX file compiled for the CPU (or the GPU plugin where a GPU is present) with the
input size fixed at the first call's and the batch left free.

OpenVINO compiles a static-shaped network faster than a dynamic one (measured: about 10 % at 640
for YOLOX-nano), so the model is reshaped to (?, 3, H, W) on the first blob and recompiled only
if a later blob has another size. fp32 pins INFERENCE_PRECISION_HINT to f32: on CPUs with bf16
units OpenVINO would otherwise silently run bf16, which moves boxes.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from streamflow_workers.device import resolve_device
from streamflow_workers.errors import ModelLoadError
from streamflow_workers.runtimes.common import fp16_fallback, runtime_module, threads

log = logging.getLogger(__name__)


class OpenVinoRuntime:
    """A compiled OpenVINO model per input size; `infer` takes an NCHW float32 blob."""

    name = "openvino"

    def __init__(self, core, model, target: str, config: dict, device: str, model_path: Path,
                 output_perm: tuple[int, ...] | None = None):
        self.core, self.model, self.target, self.config = core, model, target, config
        self.device = device
        self.model_path = model_path
        self.output_perm = output_perm  # a Transpose graph_rewrite left to numpy (a free view)
        self._compiled: dict[tuple[int, int], object] = {}

    def _request(self, height: int, width: int):
        request = self._compiled.get((height, width))
        if request is None:
            import openvino as ov
            model = self.model.clone()
            model.reshape({model.inputs[0]: ov.PartialShape([-1, 3, height, width])})
            request = self.core.compile_model(model, self.target, self.config).create_infer_request()
            self._compiled[(height, width)] = request
        return request

    def infer(self, blob: np.ndarray) -> np.ndarray:
        """One inference over the whole batch."""
        if blob.ndim != 4:
            raise ValueError(f"expected an NCHW blob, got shape {blob.shape}")
        request = self._request(blob.shape[2], blob.shape[3])
        out = request.infer({0: np.ascontiguousarray(blob, dtype=np.float32)})
        out = np.asarray(out[request.model_outputs[0]], dtype=np.float32)
        return out if self.output_perm is None else out.transpose(self.output_perm)


def load(model_path: str | Path, device: str = "cpu", precision: str = "fp32") -> OpenVinoRuntime:
    """Read the model for the CPU, or the GPU plugin for cuda (falling back with one warning line)."""
    ov = runtime_module("openvino")
    from streamflow_workers.runtimes.derived import runnable_model
    from streamflow_workers.runtimes.graph_rewrite import output_perm
    path = Path(model_path)
    resolved = resolve_device(device)
    core = ov.Core()
    target = "CPU"
    if resolved.startswith("cuda"):
        gpus = [d for d in core.available_devices if d.startswith("GPU")]
        if gpus:
            target = gpus[min(int(resolved.split(":")[1]), len(gpus) - 1)]
        else:
            log.warning("device %s requested but OpenVINO sees no GPU device; running on cpu", resolved)
            resolved = "cpu"
    precision = fp16_fallback(precision, resolved, log)
    config: dict = {"PERFORMANCE_HINT": "LATENCY",
                    "INFERENCE_PRECISION_HINT": "f16" if precision == "fp16" else "f32"}
    if target == "CPU":
        config["CPU_DENORMALS_OPTIMIZATION"] = True  # flush denormals, as onnxruntime does here
        if threads() is not None:
            config["INFERENCE_NUM_THREADS"] = threads()
    runnable = runnable_model(path)  # ModelLoadError with one line for a missing or corrupt file
    try:
        model = core.read_model(str(runnable))
    except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long multi-line texts
        raise ModelLoadError(f"cannot load model {path} with OpenVINO: {str(exc).strip().splitlines()[-1][:160]}"
                             ) from None
    return OpenVinoRuntime(core, model, target, config, resolved, path, output_perm(runnable))
