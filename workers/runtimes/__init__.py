"""Model runtimes with one interface: `load(model_path, device)` and `runtime.infer(blob)`."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from workers.errors import ModelLoadError

RUNTIMES = ("opencv", "torch")


class Runtime(Protocol):
    """What detectors and embedders need from a runtime."""

    name: str
    device: str

    def infer(self, blob: np.ndarray) -> np.ndarray: ...


def load_runtime(kind: str, model_path: str | Path, device: str = "cpu") -> Runtime:
    """Load `model_path` on the runtime named `kind` ("opencv" or "torch")."""
    if kind == "opencv":
        from workers.runtimes import opencv_dnn
        return opencv_dnn.load(model_path, device)
    if kind == "torch":
        from workers.runtimes import torch_runtime
        return torch_runtime.load(model_path, device)
    raise ModelLoadError(f"unknown runtime {kind!r} (known: {', '.join(RUNTIMES)})")
