"""What every model runtime module shares: the thread count, optional imports, the fp16 fallback.

Kept apart from the package's `__init__` (which loads the runtime modules by name) so that the runtime
modules import this and not their package: no import cycle.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from streamflow_workers.errors import ModelLoadError

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
