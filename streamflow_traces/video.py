"""Opening videos through OpenCV with FFmpeg's own log quiet, so a bad file yields one error line.

FFmpeg prints demuxer complaints ("moov atom not found") straight to stderr; the trace tools turn
them into a TraceError instead. OPENCV_FFMPEG_LOGLEVEL is read when the first capture opens, so
it is set here, before any capture; set it yourself (e.g. 24 = warnings) to see FFmpeg's log.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET

import cv2  # noqa: E402  (after the environment it reads)


def open_capture(source: str | int) -> cv2.VideoCapture:
    """A cv2.VideoCapture for a camera index ("0" or 0), an RTSP/HTTP URL or a file path."""
    if isinstance(source, str) and source.strip().isdigit():
        source = int(source)
    return cv2.VideoCapture(source)
