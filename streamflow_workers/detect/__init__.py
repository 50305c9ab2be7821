"""Detectors: every one maps a list of BGR frames to per-frame (K, 6) float32 arrays
x1, y1, x2, y2, score, class_id in original frame pixels."""
from __future__ import annotations

from typing import Protocol

import numpy as np


class Detector(Protocol):
    """What an ML operator calls; `camera` keys per-camera state (MOG2, frame sampling)."""

    def detect(self, frames: list[np.ndarray], camera: str | None = None) -> list[np.ndarray]: ...
