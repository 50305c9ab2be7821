"""The trace folder format: meta.json, the video file, frames.jsonl and optional annotations.jsonl.

A trace is what a replay source reads: capture timestamps per frame (so several cameras replay in
capture order and at capture pace) and, where known, ground-truth boxes to score a run against.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from streamflow_traces.groundtruth import empty_boxes

FORMAT_VERSION = 1
META_FILE = "meta.json"
FRAMES_FILE = "frames.jsonl"
ANNOTATIONS_FILE = "annotations.jsonl"


class TraceError(Exception):
    """A trace that cannot be written or read; the message is one line naming the file and problem."""


@dataclass(frozen=True)
class GroundTruthInfo:
    """Where a trace's annotations came from: source file name, its format, and the stated class."""

    source: str
    format: str  # "mot" or "coco"
    class_name: str | None = None
    has_ids: bool = False


@dataclass(frozen=True)
class TraceMeta:
    """The contents of meta.json."""

    camera: str
    fps: float
    width: int
    height: int
    start: float  # capture time of frame 0, unix seconds
    frame_count: int
    video: str  # file name inside the trace folder
    groundtruth: GroundTruthInfo | None = None
    version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Any, where: str) -> "TraceMeta":
        """Validate a decoded meta.json; `where` names the file in error messages."""
        if not isinstance(doc, dict):
            raise TraceError(f"{where}: expected a JSON object")
        try:
            gt = doc.get("groundtruth")
            meta = cls(
                camera=str(doc["camera"]), fps=float(doc["fps"]), width=int(doc["width"]),
                height=int(doc["height"]), start=float(doc["start"]),
                frame_count=int(doc["frame_count"]), video=str(doc["video"]),
                groundtruth=GroundTruthInfo(**gt) if gt else None,
                version=int(doc.get("version", FORMAT_VERSION)), extra=dict(doc.get("extra", {})))
        except KeyError as exc:
            raise TraceError(f"{where}: missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise TraceError(f"{where}: bad field ({exc})") from None
        if meta.version > FORMAT_VERSION:
            raise TraceError(f"{where}: trace format version {meta.version} is newer than {FORMAT_VERSION}")
        if meta.frame_count < 0 or meta.width <= 0 or meta.height <= 0 or not meta.fps > 0:
            raise TraceError(f"{where}: frame_count, width, height and fps must be positive")
        if Path(meta.video).name != meta.video:
            raise TraceError(f"{where}: video must be a file name inside the trace folder, got {meta.video!r}")
        return meta


def _read_jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line, failing on the first bad one."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise TraceError(f"{path}: cannot read ({exc.strerror})") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TraceError(f"{path}:{lineno}: bad JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise TraceError(f"{path}:{lineno}: expected a JSON object")
        yield lineno, obj


def read_timestamps(path: Path, frame_count: int) -> np.ndarray:
    """Read frames.jsonl: indices must run 0..frame_count-1 and timestamps never go back."""
    ts = np.empty(frame_count, dtype=np.float64)
    n = 0
    for lineno, obj in _read_jsonl(path):
        try:
            index, t = int(obj["index"]), float(obj["ts"])
        except (KeyError, TypeError, ValueError):
            raise TraceError(f"{path}:{lineno}: a frame line needs an integer 'index' and a number 'ts'") from None
        if index != n:
            raise TraceError(f"{path}:{lineno}: frame index {index}, expected {n}")
        if n >= frame_count:
            raise TraceError(f"{path}:{lineno}: more frames than meta.json's frame_count {frame_count}")
        if not math.isfinite(t) or (n and t < ts[n - 1]):
            raise TraceError(f"{path}:{lineno}: timestamp {t} goes back in time")
        ts[n] = t
        n += 1
    if n != frame_count:
        raise TraceError(f"{path}: {n} frames, but meta.json says frame_count {frame_count}")
    return ts


def read_annotations(path: Path, frame_count: int) -> dict[int, np.ndarray]:
    """Read annotations.jsonl into {frame: (N, 6) float64}; frames without a line get no boxes."""
    boxes = {i: empty_boxes() for i in range(frame_count)}
    for lineno, obj in _read_jsonl(path):
        try:
            index = int(obj["index"])
            arr = np.asarray(obj["boxes"], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            raise TraceError(f"{path}:{lineno}: an annotation line needs 'index' and 'boxes' "
                             "[[x1,y1,x2,y2,track_id,class_id], ...]") from None
        if arr.size == 0:
            arr = empty_boxes()
        if arr.ndim != 2 or arr.shape[1] != 6:
            raise TraceError(f"{path}:{lineno}: boxes must be rows of 6 numbers, got shape {arr.shape}")
        if not 0 <= index < frame_count:
            raise TraceError(f"{path}:{lineno}: frame index {index} outside 0..{frame_count - 1}")
        boxes[index] = arr
    return boxes


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write one compact JSON object per line."""
    with path.open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row, separators=(",", ":")) + "\n")


def frame_rows(timestamps: Iterable[float]) -> Iterable[dict[str, Any]]:
    """frames.jsonl rows for a sequence of capture timestamps."""
    return ({"index": i, "ts": float(t)} for i, t in enumerate(timestamps))


def annotation_rows(boxes: dict[int, np.ndarray], frame_count: int) -> Iterable[dict[str, Any]]:
    """annotations.jsonl rows, one per frame 0..frame_count-1 (empty lists where nothing is boxed)."""
    for i in range(frame_count):
        arr = boxes.get(i)
        rows = [] if arr is None else [[round(float(v), 3) for v in row[:4]] + [int(row[4]), int(row[5])]
                                       for row in arr]
        yield {"index": i, "boxes": rows}


def write_meta(directory: Path, meta: TraceMeta) -> None:
    (directory / META_FILE).write_text(json.dumps(meta.to_json(), indent=2) + "\n")


class Trace:
    """An opened, validated trace folder."""

    def __init__(self, directory: Path, meta: TraceMeta, timestamps: np.ndarray):
        self.directory = directory
        self.meta = meta
        self.timestamps = timestamps

    @classmethod
    def open(cls, directory: str | Path) -> "Trace":
        """Open and validate a trace folder; any problem raises TraceError naming the file."""
        directory = Path(directory)
        if not directory.is_dir():
            raise TraceError(f"{directory}: no such trace folder")
        meta_path = directory / META_FILE
        try:
            doc = json.loads(meta_path.read_text())
        except FileNotFoundError:
            raise TraceError(f"{meta_path}: missing (not a trace folder?)") from None
        except OSError as exc:
            raise TraceError(f"{meta_path}: cannot read ({exc.strerror})") from None
        except json.JSONDecodeError as exc:
            raise TraceError(f"{meta_path}:{exc.lineno}: bad JSON ({exc.msg})") from None
        meta = TraceMeta.from_json(doc, str(meta_path))
        if not (directory / meta.video).is_file():
            raise TraceError(f"{directory / meta.video}: video file missing")
        frames_path = directory / FRAMES_FILE
        if not frames_path.is_file():
            raise TraceError(f"{frames_path}: missing")
        return cls(directory, meta, read_timestamps(frames_path, meta.frame_count))

    @property
    def camera(self) -> str:
        return self.meta.camera

    @property
    def video_path(self) -> Path:
        return self.directory / self.meta.video

    @property
    def frame_count(self) -> int:
        return self.meta.frame_count

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame's capture time."""
        return float(self.timestamps[-1] - self.timestamps[0]) if self.frame_count else 0.0

    @property
    def has_groundtruth(self) -> bool:
        return (self.directory / ANNOTATIONS_FILE).is_file()

    def groundtruth(self) -> dict[int, np.ndarray]:
        """Ground-truth boxes per frame, (N, 6) x1,y1,x2,y2,track_id,class_id as in streamflow_traces.groundtruth."""
        path = self.directory / ANNOTATIONS_FILE
        if not path.is_file():
            raise TraceError(f"{path}: this trace has no ground truth")
        return read_annotations(path, self.frame_count)

    def __repr__(self) -> str:
        return f"Trace({str(self.directory)!r}, camera={self.camera!r}, frames={self.frame_count})"
