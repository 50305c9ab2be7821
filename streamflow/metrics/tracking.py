"""Tracking accuracy against ground truth: CLEAR MOT (MOTA), identity scores (IDF1), count error.

Boxes per frame are arrays (N, >=5): x1, y1, x2, y2, track_id, ... (the layout of
streamflow_traces.groundtruth and of the tracker's output). A prediction matches a ground-truth box when
their IoU is at least the threshold (0.5, as MOTChallenge). The definitions follow Bernardin &
Stiefelhagen 2008 (CLEAR MOT) and Ristani et al. 2016 (IDF1), as py-motmetrics implements them:
an identity switch is a ground-truth object matched to a track other than the last one it was
matched to, whenever that was.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from streamflow.metrics.detection import iou_matrix
from scipy.optimize import linear_sum_assignment

Boxes = Mapping[int, np.ndarray]  # frame -> (N, >=5)
IOU_THRESHOLD = 0.5
_INFEASIBLE = 1e6  # cost of a pair below the IoU threshold: any feasible pair is cheaper


def _as_boxes(boxes: np.ndarray) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64)
    return np.zeros((0, 4)) if arr.size == 0 else np.atleast_2d(arr)



def match_boxes(iou: np.ndarray, threshold: float = IOU_THRESHOLD) -> list[tuple[int, int]]:
    """Pairs (row, col) of a maximum-cardinality, maximum-IoU matching among pairs >= threshold."""
    if not iou.size:
        return []
    feasible = iou >= threshold
    cost = np.where(feasible, 1.0 - iou, _INFEASIBLE)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if feasible[r, c]]


def _frames(gt: Boxes, pred: Boxes, frames: Iterable[int] | None) -> list[int]:
    return sorted(set(gt) | set(pred)) if frames is None else sorted(frames)


def _boxes(boxes: Boxes, frame: int) -> np.ndarray:
    arr = boxes.get(frame)
    return np.zeros((0, 6)) if arr is None or np.size(arr) == 0 else np.atleast_2d(np.asarray(arr, dtype=np.float64))


@dataclass(frozen=True)
class ClearMot:
    """CLEAR MOT counts and scores over a sequence."""

    mota: float
    mean_iou: float  # over matched pairs; MOTChallenge's MOTP is 1 - this as a distance
    num_gt: int
    num_pred: int
    matches: int
    misses: int
    false_positives: int
    id_switches: int
    frames: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def clear_mot(gt: Boxes, pred: Boxes, iou_threshold: float = IOU_THRESHOLD,
              frames: Iterable[int] | None = None) -> ClearMot:
    """MOTA = 1 - (misses + false positives + id switches) / ground-truth boxes.

    Per frame: ground-truth objects keep the track they were last matched to while the IoU
    allows; the rest are matched by the Hungarian algorithm on 1 - IoU.
    """
    last: dict[float, float] = {}  # gt id -> pred id of its latest match
    matches = misses = fps = switches = num_gt = num_pred = 0
    iou_sum = 0.0
    order = _frames(gt, pred, frames)
    for frame in order:
        g, p = _boxes(gt, frame), _boxes(pred, frame)
        num_gt += len(g)
        num_pred += len(p)
        iou = iou_matrix(g, p)
        gids, pids = g[:, 4], p[:, 4]
        pairs: list[tuple[int, int]] = []
        free_g, free_p = set(range(len(g))), set(range(len(p)))
        for i in range(len(g)):  # keep correspondences still valid
            if gids[i] in last:
                candidates = [j for j in free_p if pids[j] == last[gids[i]] and iou[i, j] >= iou_threshold]
                if candidates:
                    j = max(candidates, key=lambda c: iou[i, c])
                    pairs.append((i, j))
                    free_g.discard(i)
                    free_p.discard(j)
        rest_g, rest_p = sorted(free_g), sorted(free_p)
        for r, c in match_boxes(iou[np.ix_(rest_g, rest_p)], iou_threshold):
            i, j = rest_g[r], rest_p[c]
            if gids[i] in last and last[gids[i]] != pids[j]:
                switches += 1
            pairs.append((i, j))
        for i, j in pairs:
            last[gids[i]] = pids[j]
            iou_sum += iou[i, j]
        matches += len(pairs)
        misses += len(g) - len(pairs)
        fps += len(p) - len(pairs)
    mota = 1.0 - (misses + fps + switches) / num_gt if num_gt else math.nan
    return ClearMot(mota=mota, mean_iou=iou_sum / matches if matches else math.nan, num_gt=num_gt,
                    num_pred=num_pred, matches=matches, misses=misses, false_positives=fps,
                    id_switches=switches, frames=len(order))


@dataclass(frozen=True)
class IdentityScores:
    """Identity precision, recall and F1 after the best one-to-one ground-truth/track matching."""

    idf1: float
    idp: float
    idr: float
    idtp: int
    idfp: int
    idfn: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def identity_scores(gt: Boxes, pred: Boxes, iou_threshold: float = IOU_THRESHOLD,
                    frames: Iterable[int] | None = None) -> IdentityScores:
    """IDF1 = 2 IDTP / (ground-truth boxes + predicted boxes), where IDTP counts the frames in
    which a ground-truth identity and the track globally assigned to it overlap (IoU >= threshold).

    The global min-cost assignment (cost = IDFN + IDFP of a pairing) is equivalent to
    maximising the summed overlap frames, which is what is solved here.
    """
    gindex: dict[float, int] = {}
    pindex: dict[float, int] = {}
    overlap: dict[tuple[int, int], int] = {}
    num_gt = num_pred = 0
    for frame in _frames(gt, pred, frames):
        g, p = _boxes(gt, frame), _boxes(pred, frame)
        num_gt += len(g)
        num_pred += len(p)
        gi = [gindex.setdefault(v, len(gindex)) for v in g[:, 4]]
        pi = [pindex.setdefault(v, len(pindex)) for v in p[:, 4]]
        rows, cols = np.nonzero(iou_matrix(g, p) >= iou_threshold)
        for r, c in zip(rows, cols):
            key = (gi[r], pi[c])
            overlap[key] = overlap.get(key, 0) + 1
    idtp = 0
    if overlap:
        table = np.zeros((len(gindex), len(pindex)))
        for (r, c), n in overlap.items():
            table[r, c] = n
        rows, cols = linear_sum_assignment(-table)
        idtp = int(table[rows, cols].sum())
    idfn, idfp = num_gt - idtp, num_pred - idtp
    denom = num_gt + num_pred
    return IdentityScores(idf1=2 * idtp / denom if denom else math.nan,
                          idp=idtp / num_pred if num_pred else math.nan,
                          idr=idtp / num_gt if num_gt else math.nan, idtp=idtp, idfp=idfp, idfn=idfn)


@dataclass(frozen=True)
class CountError:
    """How far predicted object counts are from the ground truth, per frame and per second."""

    per_frame_mae: float
    per_second_mae: float | None  # None without timestamps
    mean_gt_count: float
    frames: int
    seconds: int

    @property
    def relative(self) -> float:
        """Per-frame MAE relative to the mean ground-truth count."""
        return self.per_frame_mae / self.mean_gt_count if self.mean_gt_count else math.nan

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "relative": self.relative}


def count_error(gt: Boxes, pred: Boxes, timestamps: Mapping[int, float] | Sequence[float] | None = None,
                frames: Iterable[int] | None = None) -> CountError:
    """Mean |predicted - true| object count per frame and per second.

    A second's count is the mean number of objects per frame within it (capture time from
    `timestamps`, indexed by frame): what a per-second count aggregate reports without
    identities. Frames absent from `pred` count as zero objects.
    """
    order = _frames(gt, pred, frames)
    true = np.array([len(_boxes(gt, f)) for f in order], dtype=np.float64)
    got = np.array([len(_boxes(pred, f)) for f in order], dtype=np.float64)
    per_frame = float(np.mean(np.abs(got - true))) if order else math.nan
    per_second, seconds = None, 0
    if timestamps is not None and order:
        ts = np.array([timestamps[f] for f in order], dtype=np.float64)
        bucket = np.floor(ts - ts.min()).astype(np.int64)
        keys, inverse = np.unique(bucket, return_inverse=True)
        sizes = np.bincount(inverse)
        true_s = np.bincount(inverse, weights=true) / sizes
        got_s = np.bincount(inverse, weights=got) / sizes
        per_second, seconds = float(np.mean(np.abs(got_s - true_s))), len(keys)
    return CountError(per_frame_mae=per_frame, per_second_mae=per_second,
                      mean_gt_count=float(true.mean()) if order else math.nan,
                      frames=len(order), seconds=seconds)


def tracking_report(gt: Boxes, pred: Boxes, timestamps: Mapping[int, float] | Sequence[float] | None = None,
                    iou_threshold: float = IOU_THRESHOLD, frames: Iterable[int] | None = None) -> dict[str, Any]:
    """MOTA, IDF1, switches and count error together, as a run report's accuracy block."""
    order = _frames(gt, pred, frames)
    mot = clear_mot(gt, pred, iou_threshold, order)
    ids = identity_scores(gt, pred, iou_threshold, order)
    counts = count_error(gt, pred, timestamps, order)
    return {"mota": mot.mota, "idf1": ids.idf1, "id_switches": mot.id_switches,
            "count_mae_per_frame": counts.per_frame_mae, "count_mae_per_second": counts.per_second_mae,
            "clear_mot": mot.as_dict(), "identity": ids.as_dict(), "counts": counts.as_dict()}
