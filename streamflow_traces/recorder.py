"""Record a live source (camera index, RTSP/HTTP URL or file) into a trace, timestamps as captured.

Each frame's timestamp is the wall clock right after `grab()` returns, which for a live source is
when the frame arrived. SIGINT (Ctrl-C) ends the recording between frames, so the video file,
frames.jsonl and meta.json always describe the same frames.
"""
from __future__ import annotations

import json
import math
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlparse

import cv2
from tqdm import tqdm

from streamflow_traces.format import FRAMES_FILE, META_FILE, Trace, TraceError, TraceMeta, write_meta
from streamflow_traces.importer import MAX_SANE_FPS
from streamflow_traces.video import open_capture

DEFAULT_FPS = 30.0


@contextmanager
def stop_on_sigint(stop: threading.Event) -> Iterator[None]:
    """Turn the first SIGINT into `stop.set()` (a second one interrupts as usual); main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        stop.set()
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def default_camera(source: str | int) -> str:
    """A camera id from the source: camera0 for an index, the stream or file name otherwise."""
    text = str(source).strip()
    if text.isdigit():
        return f"camera{text}"
    url = urlparse(text)
    if url.scheme and url.netloc:
        return Path(url.path).stem or url.hostname or "camera"
    return Path(text).stem or "camera"


def _container_fps(cap: cv2.VideoCapture, fps_out: float | None) -> float:
    if fps_out is not None:
        if not (math.isfinite(fps_out) and 0 < fps_out <= MAX_SANE_FPS):
            raise TraceError(f"--fps-out {fps_out}: must be a frame rate in (0, {MAX_SANE_FPS:g}]")
        return fps_out
    fps = cap.get(cv2.CAP_PROP_FPS)
    return float(fps) if fps and math.isfinite(fps) and 0 < fps <= MAX_SANE_FPS else DEFAULT_FPS


def record(source: str | int, out_dir: str | Path, *, max_frames: int | None = None,
           duration: float | None = None, fps_out: float | None = None, camera: str | None = None,
           realtime: bool = False, force: bool = False, progress: bool = False,
           stop: threading.Event | None = None, clock: Callable[[], float] = time.time) -> Trace:
    """Capture frames from `source` into a trace folder until the source ends, `max_frames`,
    `duration` seconds, SIGINT or `stop` is set; return the opened trace.

    fps_out is the frame rate written in the video container (default: the source's, else 30);
    true capture times are in frames.jsonl. realtime paces a file source at its frame rate, as
    if it were a live camera (a live source paces itself).
    """
    out_dir = Path(out_dir)
    if max_frames is not None and max_frames <= 0:
        raise TraceError(f"--max-frames {max_frames}: must be positive")
    if duration is not None and not duration > 0:
        raise TraceError(f"--duration {duration}: must be positive")
    if (out_dir / META_FILE).exists() and not force:
        raise TraceError(f"{out_dir}: already holds a trace (use --force to overwrite)")
    cap = open_capture(source)
    if not cap.isOpened():
        raise TraceError(f"{source}: cannot open source (no such camera, unreachable URL or unreadable file)")
    stop = stop or threading.Event()
    fps = _container_fps(cap, fps_out)
    pace = 1.0 / fps if realtime else 0.0
    camera = camera or default_camera(source)
    video_name = "video.mp4"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / META_FILE).unlink(missing_ok=True)
    except OSError as exc:
        cap.release()
        raise TraceError(f"{out_dir}: cannot write trace ({exc.strerror})") from None
    writer: cv2.VideoWriter | None = None
    size: tuple[int, int] | None = None
    count, first_ts, last_ts = 0, 0.0, 0.0
    bar = tqdm(total=max_frames, desc=f"record {camera}", unit="frame", disable=not progress)
    try:
        # Line-buffered: a killed recorder still leaves every grabbed frame's timestamp on disk.
        with stop_on_sigint(stop), (out_dir / FRAMES_FILE).open("w", buffering=1) as frames:
            began = time.monotonic()
            while not stop.is_set():
                if max_frames is not None and count >= max_frames:
                    break
                if duration is not None and time.monotonic() - began >= duration:
                    break
                if pace:
                    wait = began + count * pace - time.monotonic()
                    if wait > 0 and stop.wait(wait):
                        break
                if not cap.grab():
                    break
                ts = clock()
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    break
                if writer is None:
                    size = (frame.shape[1], frame.shape[0])
                    writer = cv2.VideoWriter(str(out_dir / video_name), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
                    if not writer.isOpened():
                        raise TraceError(f"{out_dir / video_name}: cannot open a video writer (mp4v)")
                    first_ts = ts
                elif (frame.shape[1], frame.shape[0]) != size:
                    raise TraceError(f"{source}: frame size changed from {size[0]}x{size[1]} "
                                     f"to {frame.shape[1]}x{frame.shape[0]} while recording")
                writer.write(frame)
                frames.write(json.dumps({"index": count, "ts": ts}, separators=(",", ":")) + "\n")
                count += 1
                last_ts = ts
                bar.update()
    except OSError as exc:
        raise TraceError(f"{out_dir}: cannot write trace ({exc.strerror})") from None
    finally:
        bar.close()
        cap.release()
        if writer is not None:
            writer.release()
    if count == 0 or size is None:
        raise TraceError(f"{source}: no frame could be read")
    meta = TraceMeta(camera=camera, fps=fps, width=size[0], height=size[1], start=first_ts,
                     frame_count=count, video=video_name,
                     extra={"source": str(source), "timestamps": "wall clock at grab",
                            "measured_fps": (count - 1) / (last_ts - first_ts) if last_ts > first_ts else None})
    write_meta(out_dir, meta)
    return Trace.open(out_dir)
