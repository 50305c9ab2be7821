"""Ground truth as the evaluation of a run needs it, whatever source provided it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class GroundTruth:
    """One camera's annotations: per 0-based frame an (N, 6) array x1 y1 x2 y2 track_id class_id,
    capture times per frame (seconds), whether track ids are real, and the annotated class."""

    camera: str
    boxes: dict[int, np.ndarray]
    timestamps: list[float]
    has_ids: bool
    class_name: str | None
