"""On-camera frame filtering (Reducto, Li et al. SIGCOMM 2020; Glimpse, Chen et al. SenSys 2015):
the camera host drops a frame whose picture barely differs from the last frame it sent, and the
pipeline reuses the last results for it, so both the uplink and the detector do less work.

The feature is Glimpse's pixel difference, made robust to sensor noise and JPEG blocks: both
frames are shrunk to 1/4 per side (area averaging) in grey, and the fraction of pixels that
changed by more than PIXEL_DELTA grey levels is compared with the threshold (the knob: 0 sends
everything, 0.05 drops frames in which less than 5 % of the picture moved). The reference is the
last frame *sent*, not the previous frame, so slow drift still triggers a send.
"""
from __future__ import annotations

import cv2
import numpy as np

PIXEL_DELTA = 16  # grey levels: above JPEG and sensor noise at 1/4 scale, below a car's edge
SCALE = 4


def thumbnail(image: np.ndarray) -> np.ndarray:
    """The grey, area-averaged 1/SCALE picture the difference is measured on."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    h, w = grey.shape[:2]
    return cv2.resize(grey, (max(1, w // SCALE), max(1, h // SCALE)), interpolation=cv2.INTER_AREA)


def changed_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of thumbnail pixels that differ by more than PIXEL_DELTA."""
    return float(np.count_nonzero(cv2.absdiff(a, b) > PIXEL_DELTA)) / a.size


class FrameDifferenceFilter:
    """Per camera: keep a frame if it changed at least `threshold` against the last one kept."""

    def __init__(self, threshold: float):
        if not 0 <= threshold < 1:
            raise ValueError(f"frame-difference threshold must be in [0, 1), got {threshold}")
        self.threshold = threshold
        self._last: dict[str, np.ndarray] = {}

    def keep(self, camera: str, image: np.ndarray) -> bool:
        """Whether to send this frame; a camera's first frame and any change of size are sent."""
        thumb = thumbnail(image)
        last = self._last.get(camera)
        if last is not None and last.shape == thumb.shape and changed_fraction(last, thumb) < self.threshold:
            return False
        self._last[camera] = thumb
        return True
