"""onnxruntime: the ONNX file with symbolic input dims (any batch and size) on the CPU execution
provider, or the CUDA provider where the GPU build (onnxruntime-gpu) and a GPU are present.

Measured on YOLOX-nano here it is faster than cv2.dnn at every size on one thread
(docs/detect_table.md); with graph optimisation "all" it fuses Sigmoid*Mul and lays convolutions
out in blocked NCHWc form.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from streamflow_workers.device import resolve_device
from streamflow_workers.errors import ModelLoadError
from streamflow_workers.runtimes.common import fp16_fallback, runtime_module, threads

log = logging.getLogger(__name__)


class OnnxRuntime:
    """An InferenceSession; `infer` takes an NCHW float32 blob and returns the first output."""

    name = "onnxruntime"

    def __init__(self, session, device: str, model_path: Path, output_perm: tuple[int, ...] | None = None):
        self.session = session
        self.device = device
        self.model_path = model_path
        self.input_name = session.get_inputs()[0].name
        self.output_perm = output_perm  # a Transpose graph_rewrite left to numpy (a free view)

    def infer(self, blob: np.ndarray) -> np.ndarray:
        """One run over the whole batch."""
        if blob.ndim != 4:
            raise ValueError(f"expected an NCHW blob, got shape {blob.shape}")
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(blob, dtype=np.float32)})[0]
        out = np.asarray(out, dtype=np.float32)
        return out if self.output_perm is None else out.transpose(self.output_perm)


def load(model_path: str | Path, device: str = "cpu", precision: str = "fp32") -> OnnxRuntime:
    """Open a session on CPU, or CUDA (falling back to CPU with one warning line)."""
    ort = runtime_module("onnxruntime")
    from streamflow_workers.runtimes.derived import fp16_model, runnable_model
    from streamflow_workers.runtimes.graph_rewrite import output_perm
    path = Path(model_path)
    resolved = resolve_device(device)
    if resolved.startswith("cuda") and "CUDAExecutionProvider" not in ort.get_available_providers():
        log.warning("device %s requested but this onnxruntime build has no CUDA provider "
                    "(install onnxruntime-gpu); running on cpu", resolved)
        resolved = "cpu"
    precision = fp16_fallback(precision, resolved, log)
    runnable = fp16_model(path) if precision == "fp16" else runnable_model(path)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # onnxruntime's own warnings are about graph clean-up, not ours
    # Real frames drive some activations into denormal range, where the FPU slows down many-fold:
    # flushing them to zero took YOLOX-nano@640 from 43 to 37 ms on one thread here; boxes unchanged.
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    if threads() is not None:
        options.intra_op_num_threads = threads()
        options.inter_op_num_threads = 1
    providers: list = ["CPUExecutionProvider"]
    if resolved.startswith("cuda"):
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(resolved.split(":")[1])}))
    try:
        session = ort.InferenceSession(str(runnable), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelLoadError(f"cannot load model {path} with onnxruntime: {str(exc).splitlines()[0][:160]}") from None
    return OnnxRuntime(session, resolved, path, output_perm(runnable))
