"""Import a video file (plus MOTChallenge or COCO ground truth) into a trace folder.

The frame count comes from actually decoding the video, because container headers lie (the
highway AVI claims 1700 frames and holds 1699); timestamps come from --fps, the container's
per-frame positions when they are consistent, or the container's frame rate.
"""
from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from streamflow_traces.classes import class_index, class_name
from streamflow_traces.format import (ANNOTATIONS_FILE, FRAMES_FILE, META_FILE, GroundTruthInfo, Trace,
                           TraceError, TraceMeta, annotation_rows, frame_rows, write_jsonl,
                           write_meta)
from streamflow_traces.groundtruth import GroundTruthError, read_groundtruth
from streamflow_traces.video import open_capture

MAX_SANE_FPS = 1000.0


@dataclass(frozen=True)
class VideoProbe:
    """What decoding a whole video file tells: real frame count, size, frame rate, positions."""

    frame_count: int
    width: int
    height: int
    fps: float  # the container's claim; 0 when it has none
    container_frame_count: int
    positions_ms: np.ndarray  # CAP_PROP_POS_MSEC after each decoded frame


def probe_video(path: str | Path, progress: bool = False) -> VideoProbe:
    """Decode every frame of a video to learn what it really holds; unreadable -> TraceError."""
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"{path}: no such video file")
    cap = open_capture(str(path))
    try:
        if not cap.isOpened():
            raise TraceError(f"{path}: cannot open video (corrupt or unsupported format)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        claimed = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        positions: list[float] = []
        shape = None
        bar = tqdm(total=claimed or None, desc=f"probe {path.name}", unit="frame",
                   disable=not progress, leave=False)
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            if shape is None:
                shape = frame.shape
            elif frame.shape != shape:
                raise TraceError(f"{path}: frame {len(positions)} is {frame.shape[1]}x{frame.shape[0]}, "
                                 f"earlier frames are {shape[1]}x{shape[0]}")
            positions.append(cap.get(cv2.CAP_PROP_POS_MSEC))
            bar.update()
        bar.close()
    finally:
        cap.release()
    if shape is None:
        raise TraceError(f"{path}: no frame could be decoded (corrupt or unsupported video)")
    fps = float(fps) if fps and math.isfinite(fps) and 0 < fps <= MAX_SANE_FPS else 0.0
    return VideoProbe(len(positions), int(shape[1]), int(shape[0]), fps, claimed,
                      np.asarray(positions, dtype=np.float64))


def positions_are_sane(positions_ms: np.ndarray, fps: float) -> bool:
    """Per-frame container positions are usable when they start at 0, rise strictly, and keep
    a mean interval within 10% of the container's frame rate (AVI demuxers report the read-ahead
    position and 0 at the end, which this rejects)."""
    if len(positions_ms) < 2 or not fps:
        return False
    steps = np.diff(positions_ms)
    if abs(positions_ms[0]) > 1e-6 or not np.all(steps > 0):
        return False
    return abs(float(np.mean(steps)) - 1000.0 / fps) <= 0.1 * 1000.0 / fps


def capture_timestamps(probe: VideoProbe, start: float, fps: float | None) -> tuple[np.ndarray, float, str]:
    """Timestamps (unix seconds), the nominal fps and how they were made."""
    if fps is not None:
        if not (math.isfinite(fps) and 0 < fps <= MAX_SANE_FPS):
            raise TraceError(f"--fps {fps}: must be a frame rate in (0, {MAX_SANE_FPS:g}]")
        return start + np.arange(probe.frame_count) / fps, fps, "fps option"
    if not probe.fps:
        raise TraceError("the video states no frame rate: pass --fps")
    if positions_are_sane(probe.positions_ms, probe.fps):
        return start + probe.positions_ms / 1000.0, probe.fps, "container positions"
    return start + np.arange(probe.frame_count) / probe.fps, probe.fps, "container fps"


def stated_class(class_label: str | None) -> int:
    """COCO index of --class, -1 when not given."""
    if class_label is None:
        return -1
    try:
        return class_index(class_label)
    except ValueError as exc:
        raise TraceError(f"--class: {exc}") from None


def load_groundtruth(path: str | Path, class_label: str | None, probe: VideoProbe
                     ) -> tuple[dict[int, np.ndarray], GroundTruthInfo]:
    """Read MOT/COCO boxes, stamp the stated class on class-less rows, and check they fit the video."""
    path = Path(path)
    cid = stated_class(class_label)
    try:
        boxes = read_groundtruth(path, cid)
    except GroundTruthError as exc:
        raise TraceError(str(exc)) from None
    for arr in boxes.values():
        arr[arr[:, 5] < 0, 5] = cid
    check_groundtruth_fits(path, boxes, probe)
    rows = [a for a in boxes.values() if len(a)]
    allboxes = np.concatenate(rows) if rows else np.zeros((0, 6))
    classes = sorted({int(c) for c in allboxes[:, 5] if c >= 0})
    names = ",".join(class_name(c) or str(c) for c in classes) or None
    info = GroundTruthInfo(source=path.name, format="coco" if path.suffix.lower() == ".json" else "mot",
                           class_name=names, has_ids=bool(len(allboxes) and np.any(allboxes[:, 4] >= 0)))
    return boxes, info


def check_groundtruth_fits(path: Path, boxes: dict[int, np.ndarray], probe: VideoProbe) -> None:
    """Reject ground truth for another cut or resolution of the clip (PETS09 ships two)."""
    if not boxes:
        return
    last = max(boxes)
    if last >= probe.frame_count or min(boxes) < 0:
        raise TraceError(f"{path}: boxes on frame {last + 1} but the video has {probe.frame_count} frames")
    rows = [a for a in boxes.values() if len(a)]
    if not rows:
        return
    allboxes = np.concatenate(rows)
    cx = (allboxes[:, 0] + allboxes[:, 2]) / 2
    cy = (allboxes[:, 1] + allboxes[:, 3]) / 2
    w, h = probe.width, probe.height
    outside = (cx < -0.05 * w) | (cx > 1.05 * w) | (cy < -0.05 * h) | (cy > 1.05 * h)
    if outside.mean() > 0.01:
        raise TraceError(f"{path}: {int(outside.sum())} of {len(allboxes)} boxes lie outside the "
                         f"{w}x{h} video (boxes reach x={allboxes[:, 2].max():.0f}, "
                         f"y={allboxes[:, 3].max():.0f}); ground truth for another resolution?")


def import_video(video: str | Path, out_dir: str | Path, *, groundtruth: str | Path | None = None,
                 fps: float | None = None, camera: str | None = None, start: float = 0.0,
                 class_label: str | None = None, force: bool = False, link: bool = False,
                 progress: bool = False) -> Trace:
    """Write a trace folder for `video` and return it opened.

    start is the capture time of frame 0 (unix seconds); 0 means "unknown", so timestamps are
    relative to the clip's start and cameras imported alike start together. link puts a
    relative symlink to the video in the folder instead of a copy (for data kept beside the repo).
    """
    video, out_dir = Path(video), Path(out_dir)
    if not math.isfinite(start) or start < 0:
        raise TraceError(f"--start {start}: must be unix seconds >= 0")
    stated_class(class_label)
    probe = probe_video(video, progress=progress)
    timestamps, nominal_fps, origin = capture_timestamps(probe, start, fps)
    boxes, gt_info = (load_groundtruth(groundtruth, class_label, probe) if groundtruth is not None
                      else (None, None))
    if out_dir.exists() and not out_dir.is_dir():
        raise TraceError(f"{out_dir}: exists and is not a folder")
    if (out_dir / META_FILE).exists() and not force:
        raise TraceError(f"{out_dir}: already holds a trace (use --force to overwrite)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for stale in (META_FILE, ANNOTATIONS_FILE):
            (out_dir / stale).unlink(missing_ok=True)
        target = out_dir / video.name
        if link:
            target.unlink(missing_ok=True)
            target.symlink_to(os.path.relpath(video.resolve(), out_dir.resolve()))
        elif not target.exists() or not target.samefile(video):
            target.unlink(missing_ok=True)
            shutil.copyfile(video, target)
        write_jsonl(out_dir / FRAMES_FILE, frame_rows(timestamps))
        if boxes is not None:
            write_jsonl(out_dir / ANNOTATIONS_FILE, annotation_rows(boxes, probe.frame_count))
        meta = TraceMeta(camera=camera or video.stem, fps=nominal_fps, width=probe.width,
                         height=probe.height, start=float(timestamps[0]), frame_count=probe.frame_count,
                         video=video.name, groundtruth=gt_info,
                         extra={"source": str(video), "timestamps": origin,
                                "container_frame_count": probe.container_frame_count})
        write_meta(out_dir, meta)  # last: a folder with meta.json is a complete trace
    except OSError as exc:
        raise TraceError(f"{out_dir}: cannot write trace ({exc.strerror})") from None
    return Trace.open(out_dir)
