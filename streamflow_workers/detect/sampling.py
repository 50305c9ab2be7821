"""Frame sampling as a variant knob: run the detector on every k-th frame of a camera and re-emit
the last detections for the frames in between, so accuracy is still scored on every frame."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamflow_workers.errors import VariantError


class SampledDetector:
    """Wraps a detector; per camera, frames whose index is a multiple of `every` are detected."""

    def __init__(self, detector, every: int):
        if every < 1:
            raise VariantError(f"frame sampling interval must be >= 1, got {every}")
        self.detector = detector
        self.every = every
        self._last: dict[str | None, np.ndarray] = {}
        self._next_index: dict[str | None, int] = {}

    def detect(self, frames: list[np.ndarray], camera: str | None = None,
               indices: Sequence[int] | None = None) -> list[np.ndarray]:
        """Detections for every frame: one batched call on the selected frames, copies elsewhere.

        `indices` are the frames' numbers in their camera's stream; by default they continue
        from the previous call for that camera (0, 1, 2, ... over the camera's life)."""
        if indices is None:
            start = self._next_index.get(camera, 0)
            indices = range(start, start + len(frames))
        if len(indices) != len(frames):
            raise ValueError("indices and frames differ in length")
        if len(frames) == 0:
            return []
        self._next_index[camera] = indices[-1] + 1
        run = [i for i, index in enumerate(indices) if index % self.every == 0]
        if camera not in self._last and (not run or run[0] != 0):
            run.insert(0, 0)  # a camera's first frame is always detected: nothing to re-emit yet
        detected = dict(zip(run, self.detector.detect([frames[i] for i in run], camera=camera))) if run else {}
        out = []
        for i in range(len(frames)):
            if i in detected:
                self._last[camera] = detected[i]
            out.append(self._last[camera].copy())
        return out
