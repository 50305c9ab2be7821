"""Ground-truth readers: MOTChallenge CSV and COCO JSON into per-frame box arrays.

Boxes are float64 arrays of shape (N, 6): x1, y1, x2, y2, track_id (-1 when unknown), class_id
(COCO 80-class index; MOT files carry no class, the caller states it). Frames are 0-based
indices into the video file, so they line up with decoded frame numbers.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

BOX_COLUMNS = ("x1", "y1", "x2", "y2", "track_id", "class_id")
_EMPTY = np.zeros((0, 6), dtype=np.float64)


class GroundTruthError(ValueError):
    """A ground-truth file that cannot be read; the message names the file and the problem."""


def empty_boxes() -> np.ndarray:
    """An (0, 6) box array, for frames without annotations."""
    return _EMPTY.copy()


def read_mot(path: str | Path, class_id: int = -1) -> dict[int, np.ndarray]:
    """Read a MOTChallenge CSV (`frame,id,x,y,w,h,conf,...`, 1-based frames).

    Rows with conf == 0 are MOT's "ignore" marks and are dropped.
    """
    path = Path(path)
    rows: dict[int, list[list[float]]] = {}
    try:
        text = path.read_text()
    except OSError as exc:
        raise GroundTruthError(f"{path}: cannot read ground truth ({exc.strerror})") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = line.split(",")
        try:
            frame, tid, x, y, w, h = (float(p) for p in parts[:6])
            conf = float(parts[6]) if len(parts) > 6 else 1.0
        except ValueError:
            raise GroundTruthError(f"{path}:{lineno}: not a MOTChallenge row: {line[:60]!r}") from None
        if len(parts) < 6:
            raise GroundTruthError(f"{path}:{lineno}: a MOTChallenge row needs at least 6 fields")
        if conf == 0:
            continue
        rows.setdefault(int(frame) - 1, []).append([x, y, x + w, y + h, tid, class_id])
    return {f: np.asarray(r, dtype=np.float64) for f, r in sorted(rows.items())}


_COCO_TO_INDEX = {  # COCO category id (1..90, with gaps) -> contiguous 80-class index
    cid: i for i, cid in enumerate(
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27,
         28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53,
         54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80,
         81, 82, 84, 85, 86, 87, 88, 89, 90])}
_COCO_NAMES = ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck")


def _frame_number(file_name: str) -> int:
    digits = re.findall(r"\d+", Path(file_name).stem)
    if not digits:
        raise GroundTruthError(f"COCO image {file_name!r}: no frame number in its file name")
    return int(digits[-1])


def read_coco(path: str | Path) -> dict[int, np.ndarray]:
    """Read a COCO detection JSON whose image file names carry frame numbers (`401.jpg`).

    Images are ordered by that number and mapped to frames 0..N-1; categories map by name to
    the COCO 80-class index when the name is known, else by the standard COCO id table.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        images, annotations = doc["images"], doc["annotations"]
    except OSError as exc:
        raise GroundTruthError(f"{path}: cannot read ground truth ({exc.strerror})") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise GroundTruthError(f"{path}: not a COCO detection file ({exc})") from None
    order = sorted(images, key=lambda im: _frame_number(im["file_name"]))
    frame_of = {im["id"]: i for i, im in enumerate(order)}
    class_of: dict[int, int] = {}
    for cat in doc.get("categories", []):
        name = cat.get("name")
        class_of[cat["id"]] = (_COCO_NAMES.index(name) if name in _COCO_NAMES
                               else _COCO_TO_INDEX.get(cat["id"], -1))
    rows: dict[int, list[list[float]]] = {i: [] for i in range(len(order))}
    for ann in annotations:
        if ann.get("iscrowd", 0):
            continue
        x, y, w, h = ann["bbox"]
        tid = ann.get("attributes", {}).get("track_id", ann.get("track_id", -1))
        rows[frame_of[ann["image_id"]]].append([x, y, x + w, y + h, tid, class_of.get(ann["category_id"], -1)])
    return {f: (np.asarray(r, dtype=np.float64) if r else empty_boxes()) for f, r in rows.items()}


def read_groundtruth(path: str | Path, class_id: int = -1) -> dict[int, np.ndarray]:
    """Read MOT (.txt/.csv) or COCO (.json) by extension."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return read_coco(path)
    if suffix in (".txt", ".csv"):
        return read_mot(path, class_id)
    raise GroundTruthError(f"{path}: unknown ground-truth format (expected MOT .txt or COCO .json)")
