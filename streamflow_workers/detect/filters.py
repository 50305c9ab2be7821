"""Vectorised filters over (K, 6) detections: by COCO class, by region of interest, by box size."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from streamflow.metrics.detection import select_classes

COCO_CLASSES = {"person": 0, "bicycle": 1, "car": 2, "motorcycle": 3, "bus": 5, "truck": 7}
VEHICLES = (COCO_CLASSES["car"], COCO_CLASSES["bus"], COCO_CLASSES["truck"])


def class_ids(names_or_ids: Iterable[str | int]) -> list[int]:
    """COCO indices for names ("car") or indices (2); unknown names raise ValueError."""
    out = []
    for item in names_or_ids:
        if isinstance(item, str) and not item.isdigit():
            if item not in COCO_CLASSES:
                raise ValueError(f"unknown class name {item!r} (known: {', '.join(COCO_CLASSES)})")
            out.append(COCO_CLASSES[item])
        else:
            out.append(int(item))
    return out


def keep_classes(boxes: np.ndarray, classes: Iterable[str | int]) -> np.ndarray:
    """Rows whose class_id (column 5) is one of `classes`."""
    return select_classes(boxes, class_ids(classes))


def centres(boxes: np.ndarray) -> np.ndarray:
    """Box centres (K, 2)."""
    return np.column_stack(((boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2))


def inside_polygon(points: np.ndarray, polygon: Sequence[Sequence[float]]) -> np.ndarray:
    """Even-odd ray casting for many points at once; points on an edge may fall either way."""
    poly = np.asarray(polygon, dtype=np.float64)
    if poly.ndim != 2 or poly.shape[0] < 3 or poly.shape[1] != 2:
        raise ValueError("a region needs at least three (x, y) vertices")
    x, y = points[:, 0:1], points[:, 1:2]  # (K, 1) against edges (1, E)
    x1, y1 = poly[:, 0][None, :], poly[:, 1][None, :]
    x2, y2 = np.roll(poly[:, 0], -1)[None, :], np.roll(poly[:, 1], -1)[None, :]
    crosses = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    return ((crosses & (x < x_at)).sum(axis=1) % 2) == 1


def keep_in_region(boxes: np.ndarray, polygon: Sequence[Sequence[float]]) -> np.ndarray:
    """Rows whose box centre lies inside the polygon (e.g. the road, not the parking lot)."""
    if len(boxes) == 0:
        return boxes
    return boxes[inside_polygon(centres(boxes), polygon)]


def roi_polygon(x1: float, y1: float, x2: float, y2: float) -> list[tuple[float, float]]:
    """A rectangular region of interest as a polygon."""
    return [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]


def keep_min_size(boxes: np.ndarray, min_width: float = 0.0, min_height: float = 0.0,
                  min_area: float = 0.0) -> np.ndarray:
    """Rows at least this wide, tall and large (pixels)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return boxes[(w >= min_width) & (h >= min_height) & (w * h >= min_area)]
