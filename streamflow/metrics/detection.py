"""Detection accuracy against ground truth: greedy IoU matching, AP50, precision/recall, count error.

Detections are per-frame arrays (N, >=5): x1, y1, x2, y2, score[, class_id]; ground truth is
per-frame arrays (M, >=4): x1, y1, x2, y2[, track_id, class_id] as `streamflow_traces.groundtruth` reads
them. Callers select classes first (`select_classes`). AP is COCO-style: 101-point interpolated
precision over recall 0, 0.01, ..., 1 at one IoU threshold (0.5 for AP50). numpy only.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

FrameBoxes = Mapping[int, np.ndarray] | Sequence[np.ndarray]
_EMPTY = np.zeros((0, 6))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union of boxes a (N, >=4) and b (M, >=4), x1 y1 x2 y2."""
    a, b = _corners(a), _corners(b)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@dataclass(frozen=True)
class Matches:
    """Result of matching one frame: index pairs and their IoU; unmatched indices are the rest."""

    detection: np.ndarray  # indices into the detections
    truth: np.ndarray  # indices into the ground truth
    iou: np.ndarray


def match_greedy(detections: np.ndarray, truth: np.ndarray, iou_threshold: float = 0.5) -> Matches:
    """COCO greedy matching: detections by descending score each take the unmatched ground-truth
    box of highest IoU, if that IoU reaches the threshold. Ties keep the earlier index."""
    detections = _as_boxes(detections)
    truth = _as_boxes(truth)
    ious = iou_matrix(detections, truth)
    order = np.argsort(-detections[:, 4], kind="stable") if len(detections) else np.zeros(0, int)
    taken = np.zeros(len(truth), dtype=bool)
    det_idx, gt_idx, values = [], [], []
    for d in order:
        if not len(truth):
            break
        candidates = np.where(taken, -1.0, ious[d])
        g = int(np.argmax(candidates))
        if candidates[g] >= iou_threshold and candidates[g] > 0:
            taken[g] = True
            det_idx.append(int(d))
            gt_idx.append(g)
            values.append(float(candidates[g]))
    return Matches(np.asarray(det_idx, dtype=np.int64), np.asarray(gt_idx, dtype=np.int64),
                   np.asarray(values, dtype=np.float64))


def select_classes(boxes: np.ndarray, classes: Iterable[int] | None, class_column: int = 5) -> np.ndarray:
    """Rows whose class (column `class_column`) is in `classes`; None keeps every row."""
    boxes = np.asarray(boxes)
    if classes is None or len(boxes) == 0:
        return boxes
    return boxes[np.isin(boxes[:, class_column], np.fromiter(classes, dtype=np.float64))]


def average_precision(detections: FrameBoxes, truth: FrameBoxes, iou_threshold: float = 0.5,
                      frames: Iterable[int] | None = None) -> float:
    """COCO 101-point interpolated AP over all frames (AP50 at the default threshold).

    A frame missing from `detections` has no detections; missing from `truth`, no objects.
    Returns nan when there is no ground-truth box at all.
    """
    scores, hits, total = _scored_hits(detections, truth, iou_threshold, frames)
    if total == 0:
        return float("nan")
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(hits[order])
    fp = np.cumsum(~hits[order])
    recall = tp / total
    precision = tp / (tp + fp)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at recall >= r
    points = np.linspace(0.0, 1.0, 101)
    at = np.searchsorted(recall, points, side="left")
    sampled = np.where(at < len(envelope), envelope[np.minimum(at, len(envelope) - 1)], 0.0)
    return float(sampled.mean())


@dataclass(frozen=True)
class PrecisionRecall:
    """Counts and rates at one score threshold, summed over frames."""

    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else float("nan")

    @property
    def recall(self) -> float:
        real = self.true_positives + self.false_negatives
        return self.true_positives / real if real else float("nan")

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0


def precision_recall(detections: FrameBoxes, truth: FrameBoxes, score_threshold: float = 0.0,
                     iou_threshold: float = 0.5, frames: Iterable[int] | None = None) -> PrecisionRecall:
    """Precision and recall of the detections scoring >= `score_threshold`, greedy-matched."""
    tp = fp = fn = 0
    for frame in _frames(detections, truth, frames):
        dets = _as_boxes(_get(detections, frame))
        dets = dets[dets[:, 4] >= score_threshold]
        gts = _get(truth, frame)
        matched = len(match_greedy(dets, gts, iou_threshold).detection)
        tp += matched
        fp += len(dets) - matched
        fn += len(gts) - matched
    return PrecisionRecall(tp, fp, fn)


def count_errors(detections: FrameBoxes, truth: FrameBoxes, score_threshold: float = 0.0,
                 frames: Iterable[int] | None = None) -> np.ndarray:
    """Per-frame signed count error (detected - true) for detections scoring >= the threshold."""
    out = []
    for frame in _frames(detections, truth, frames):
        dets = _as_boxes(_get(detections, frame))
        out.append(int((dets[:, 4] >= score_threshold).sum()) - len(_get(truth, frame)))
    return np.asarray(out, dtype=np.int64)


def _corners(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        return np.zeros((0, 4))
    return np.atleast_2d(boxes)[:, :4]


def _as_boxes(boxes: np.ndarray | None) -> np.ndarray:
    if boxes is None:
        return _EMPTY
    boxes = np.asarray(boxes, dtype=np.float64)
    return boxes.reshape(0, 6) if boxes.size == 0 else boxes


def _get(per_frame: FrameBoxes, frame: int) -> np.ndarray:
    if isinstance(per_frame, Mapping):
        return _as_boxes(per_frame.get(frame))
    return _as_boxes(per_frame[frame]) if 0 <= frame < len(per_frame) else _EMPTY


def _keys(per_frame: FrameBoxes) -> set[int]:
    return set(per_frame.keys()) if isinstance(per_frame, Mapping) else set(range(len(per_frame)))


def _frames(detections: FrameBoxes, truth: FrameBoxes, frames: Iterable[int] | None) -> list[int]:
    return sorted(frames) if frames is not None else sorted(_keys(detections) | _keys(truth))


def _scored_hits(detections: FrameBoxes, truth: FrameBoxes, iou_threshold: float,
                 frames: Iterable[int] | None) -> tuple[np.ndarray, np.ndarray, int]:
    scores, hits, total = [], [], 0
    for frame in _frames(detections, truth, frames):
        dets = _get(detections, frame)
        gts = _get(truth, frame)
        total += len(gts)
        if not len(dets):
            continue
        hit = np.zeros(len(dets), dtype=bool)
        hit[match_greedy(dets, gts, iou_threshold).detection] = True
        scores.append(dets[:, 4])
        hits.append(hit)
    if not scores:
        return np.zeros(0), np.zeros(0, dtype=bool), total
    return np.concatenate(scores), np.concatenate(hits), total


@dataclass(frozen=True)
class Agreement:
    """How closely two detectors' outputs agree over the same frames."""

    mean_iou: float  # of boxes greedy-matched at the IoU threshold
    matched_fraction: float  # matched boxes / boxes of the larger output, over all frames
    max_count_difference: int  # worst per-frame difference in the number of boxes


def agreement(first: FrameBoxes, second: FrameBoxes, iou_threshold: float = 0.5,
              frames: Iterable[int] | None = None) -> Agreement:
    """Compare two detectors frame by frame (e.g. one model on two runtimes), `first` as reference."""
    ious, matched, larger, worst = [], 0, 0, 0
    for frame in _frames(first, second, frames):
        a, b = _get(first, frame), _get(second, frame)
        m = match_greedy(b, a, iou_threshold)
        ious.append(m.iou)
        matched += len(m.iou)
        larger += max(len(a), len(b))
        worst = max(worst, abs(len(a) - len(b)))
    all_ious = np.concatenate(ious) if ious else np.zeros(0)
    return Agreement(float(all_ious.mean()) if len(all_ious) else float("nan"),
                     matched / larger if larger else 1.0, worst)
