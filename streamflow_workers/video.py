"""Decode frames of a video file with OpenCV, for tools and tests that score detectors offline."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np


class VideoError(RuntimeError):
    """A video file that is missing or cannot be decoded."""


def read_frames(path: str | Path, count: int | None = None, start: int = 0) -> Iterator[np.ndarray]:
    """Yield BGR frames start, start+1, ... (at most `count`), in file order."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video file not found: {path}")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"cannot decode video file: {path}")
    try:
        index = 0
        while count is None or index < start + count:
            ok, frame = capture.read()
            if not ok:
                if index == 0:
                    raise VideoError(f"cannot decode video file: {path}")
                return
            if index >= start:
                yield frame
            index += 1
    finally:
        capture.release()


def frame_count(path: str | Path) -> int:
    """Number of frames the container declares (decoding may yield slightly fewer)."""
    capture = cv2.VideoCapture(str(path))
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
