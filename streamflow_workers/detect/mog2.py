"""Background subtraction (OpenCV MOG2) as the cheapest detector variant for fixed cameras.

Foreground mask (shadows dropped) -> opening and closing -> connected components -> boxes of one
fixed class. A box's score is how much of it the blob fills, so compact blobs rank above ragged
ones in AP. The background model is state: one per camera, learnt from the frames it sees.
Defaults were chosen on NGSIM camera 2 (overhead freeway, cars of ~25x20 px at 640x480) and
are scored on camera 1; other scenes want their own min_area and morphology sizes.
"""
from __future__ import annotations

import cv2
import numpy as np

_FOREGROUND = 200  # MOG2 marks shadows 127 and foreground 255


class Mog2Detector:
    """Moving-object boxes from a per-camera MOG2 background model, as (K, 6) float32 arrays."""

    def __init__(self, class_id: int = 2, history: int = 200, var_threshold: float = 8.0,
                 detect_shadows: bool = True, min_area: int = 150, max_area_fraction: float = 0.25,
                 open_size: int = 2, close_size: int = 5, warmup_frames: int = 1,
                 learning_rate: float = -1.0):
        self.class_id = class_id
        self.history = history
        self.var_threshold = var_threshold
        self.detect_shadows = detect_shadows
        self.min_area = min_area
        self.max_area_fraction = max_area_fraction
        self.warmup_frames = warmup_frames
        self.learning_rate = learning_rate
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (open_size, open_size))
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (close_size, close_size))
        self._models: dict[str | None, cv2.BackgroundSubtractorMOG2] = {}
        self._seen: dict[str | None, int] = {}

    def reset(self, camera: str | None = None) -> None:
        """Forget the background model of one camera."""
        self._models.pop(camera, None)
        self._seen.pop(camera, None)

    def foreground(self, frame: np.ndarray, camera: str | None = None) -> np.ndarray:
        """Update the camera's model with `frame` and return its cleaned binary foreground mask."""
        model = self._models.get(camera)
        if model is None:
            model = cv2.createBackgroundSubtractorMOG2(self.history, self.var_threshold, self.detect_shadows)
            self._models[camera] = model
        raw = model.apply(frame, learningRate=self.learning_rate)
        self._seen[camera] = self._seen.get(camera, 0) + 1
        mask = (raw >= _FOREGROUND).astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._open)
        return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close)

    def boxes(self, mask: np.ndarray) -> np.ndarray:
        """Connected components of a binary mask -> (K, 6) boxes scored by fill ratio."""
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        stats = stats[1:count]  # row 0 is the background
        x, y, w, h, area = (stats[:, i].astype(np.float32) for i in range(5))
        keep = (area >= self.min_area) & (w * h <= self.max_area_fraction * mask.size)
        x, y, w, h, area = x[keep], y[keep], w[keep], h[keep], area[keep]
        score = area / np.maximum(w * h, 1.0)
        out = np.column_stack((x, y, x + w, y + h, score, np.full_like(x, self.class_id)))
        return out[np.argsort(-score, kind="stable")].astype(np.float32)

    def detect(self, frames: list[np.ndarray], camera: str | None = None) -> list[np.ndarray]:
        """Frames of one camera in capture order -> boxes per frame (empty during warm-up)."""
        out = []
        for frame in frames:
            mask = self.foreground(frame, camera)
            if self._seen[camera] <= self.warmup_frames:
                out.append(np.zeros((0, 6), dtype=np.float32))
            else:
                out.append(self.boxes(mask))
        return out
