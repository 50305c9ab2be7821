"""Tracking metrics on hand-computed cases, and against py-motmetrics where it is installed."""
from __future__ import annotations

import math

import numpy as np
import pytest

from streamflow.metrics.tracking import (clear_mot, count_error, identity_scores, iou_matrix, match_boxes,
                                         tracking_report)
from streamflow_traces.catalog import shared_data_dir


def box(x: float, y: float, tid: int, w: float = 10, h: float = 10) -> list[float]:
    return [x, y, x + w, y + h, tid, 0]


def frames(*rows_per_frame) -> dict[int, np.ndarray]:
    return {f: np.array(rows, dtype=np.float64).reshape(-1, 6) for f, rows in enumerate(rows_per_frame)}


def test_iou_matrix() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150, 0, 1], [0, 0, 0.04]])
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)
    assert iou_matrix([], []).shape == (0, 0)


def test_match_boxes_threshold_is_inclusive() -> None:
    iou = np.array([[0.5, 0.49], [0.2, 0.7]])
    assert match_boxes(iou) == [(0, 0), (1, 1)]
    assert match_boxes(np.array([[0.49]])) == []


def test_perfect_tracking() -> None:
    gt = frames([box(0, 0, 1), box(50, 0, 2)], [box(2, 0, 1), box(52, 0, 2)], [box(4, 0, 1)])
    pred = {f: b.copy() + np.array([0, 0, 0, 0, 10, 0]) for f, b in gt.items()}  # other id numbers
    mot, ids = clear_mot(gt, pred), identity_scores(gt, pred)
    assert (mot.mota, mot.id_switches, mot.misses, mot.false_positives) == (1.0, 0, 0, 0)
    assert mot.mean_iou == 1.0 and ids.idf1 == 1.0


def test_swapped_ids_count_two_switches() -> None:
    # Two objects for 4 frames; the tracker swaps their ids from frame 2 on.
    gt = frames(*[[box(0, 0, 1), box(50, 0, 2)]] * 4)
    pred = frames(*[[box(0, 0, 7), box(50, 0, 8)]] * 2, *[[box(0, 0, 8), box(50, 0, 7)]] * 2)
    mot = clear_mot(gt, pred)
    assert mot.id_switches == 2 and mot.misses == 0 and mot.false_positives == 0
    assert mot.mota == pytest.approx(1 - 2 / 8)
    ids = identity_scores(gt, pred)  # each gt id shares 2 of its 4 frames with either track
    assert (ids.idtp, ids.idfn, ids.idfp) == (4, 4, 4)
    assert ids.idf1 == pytest.approx(2 * 4 / (8 + 8))


def test_misses_and_false_positives() -> None:
    gt = frames([box(0, 0, 1), box(50, 0, 2), box(100, 0, 3)])
    pred = frames([box(0, 0, 1), box(51, 0, 2), box(200, 200, 3)])
    mot = clear_mot(gt, pred)
    assert (mot.matches, mot.misses, mot.false_positives) == (2, 1, 1)
    assert mot.mota == pytest.approx(1 - 2 / 3)
    assert mot.mean_iou == pytest.approx((1 + 90 / 110) / 2)


def test_existing_correspondence_is_kept_over_a_better_overlap() -> None:
    gt = frames([box(0, 0, 1)], [box(0, 0, 1)])
    # Frame 1: track 5 (IoU 0.6, above the threshold) keeps the object; track 6 overlaps more.
    shift = 10 - 10 * 2 * 0.6 / 1.6  # x offset for IoU 0.6 between 10x10 boxes
    pred = frames([box(0, 0, 5)], [box(shift, 0, 5), box(0.1, 0, 6)])
    mot = clear_mot(gt, pred)
    assert iou_matrix(np.array(box(0, 0, 1)), np.array(box(shift, 0, 5)))[0, 0] == pytest.approx(0.6)
    assert (mot.id_switches, mot.false_positives, mot.matches) == (0, 1, 2)


def test_switch_is_counted_against_the_last_match_even_after_a_gap() -> None:
    gt = frames([box(0, 0, 1)], [box(0, 0, 1)], [box(0, 0, 1)])
    pred = frames([box(0, 0, 5)], [], [box(0, 0, 6)])
    mot = clear_mot(gt, pred)
    assert (mot.id_switches, mot.misses, mot.matches) == (1, 1, 2)
    assert mot.mota == pytest.approx(1 - (1 + 1) / 3)


def test_count_error_per_frame_and_per_second() -> None:
    gt = frames([box(0, 0, 1)] * 2, [box(0, 0, 1)] * 3, [box(0, 0, 1)], [])
    pred = frames([box(0, 0, 1)] * 3, [box(0, 0, 1)], [box(0, 0, 1)], [box(0, 0, 1)] * 2)
    counts = count_error(gt, pred, timestamps=[100.0, 100.5, 101.0, 101.5])
    assert counts.per_frame_mae == pytest.approx((1 + 2 + 0 + 2) / 4)
    # second 0: gt mean 2.5, pred mean 2; second 1: gt 0.5, pred 1.5
    assert counts.per_second_mae == pytest.approx((0.5 + 1.0) / 2)
    assert counts.seconds == 2 and counts.mean_gt_count == pytest.approx(1.5)
    assert count_error(gt, {}).per_frame_mae == pytest.approx(1.5)  # missing frames count zero
    assert count_error(gt, pred).per_second_mae is None


def test_empty_ground_truth_gives_nan_not_an_error() -> None:
    mot = clear_mot({0: np.zeros((0, 6))}, {0: np.array([box(0, 0, 1)])})
    assert math.isnan(mot.mota) and mot.false_positives == 1
    report = tracking_report({0: np.zeros((0, 6))}, {})
    assert math.isnan(report["mota"]) and report["count_mae_per_frame"] == 0


def _motmetrics_summary(gt, pred):
    """py-motmetrics on the same input, with distances computed here (its own IoU helper
    calls np.asfarray, which NumPy 2 removed)."""
    mm = pytest.importorskip("motmetrics", reason="py-motmetrics is not installed (optional cross-check)")
    acc = mm.MOTAccumulator(auto_id=True)
    for f in sorted(gt):
        g, p = gt[f], pred.get(f, np.zeros((0, 6)))
        dist = np.full((len(g), len(p)), np.nan)
        for a in range(len(g)):
            for b in range(len(p)):
                ix = max(0.0, min(g[a, 2], p[b, 2]) - max(g[a, 0], p[b, 0]))
                iy = max(0.0, min(g[a, 3], p[b, 3]) - max(g[a, 1], p[b, 1]))
                inter = ix * iy
                union = (g[a, 2] - g[a, 0]) * (g[a, 3] - g[a, 1]) + (p[b, 2] - p[b, 0]) * (p[b, 3] - p[b, 1]) - inter
                if inter / union >= 0.5:
                    dist[a, b] = 1 - inter / union
        acc.update(g[:, 4], p[:, 4], dist)
    metrics = ["mota", "motp", "idf1", "num_switches", "num_misses", "num_false_positives"]
    return mm.metrics.create().compute(acc, metrics=metrics, name="run").to_dict("records")[0]


def test_agrees_with_motmetrics_on_pets09_with_a_noisy_tracker() -> None:
    data = shared_data_dir()
    if data is None:
        pytest.skip("shared data (<repo>/../shared/data) is absent")
    from streamflow_traces.groundtruth import read_mot
    from streamflow_workers.tracking.sort import Tracker

    raw = read_mot(data / "traces" / "gt" / "pets09_s2l1_gt_mot15_480x360.txt", 0)
    gt = {f: raw.get(f, np.zeros((0, 6))) for f in range(300)}
    rng = np.random.default_rng(1)
    tracker, pred = Tracker(max_age=2, min_hits=3), {}
    for f in range(300):  # noisy, incomplete detections with the odd false one: a real mix of errors
        d = gt[f].copy()
        d = d[rng.random(len(d)) > 0.15]
        size = np.c_[d[:, 2] - d[:, 0], d[:, 3] - d[:, 1], d[:, 2] - d[:, 0], d[:, 3] - d[:, 1]]
        d[:, :4] += rng.normal(0, 0.1, (len(d), 4)) * size
        if rng.random() < 0.3:
            x, y = rng.uniform(0, 400), rng.uniform(0, 300)
            d = np.r_[d, [[x, y, x + 20, y + 50, 1, 0]]]
        pred[f] = tracker.update(d)[:, :6]
    expected = _motmetrics_summary(gt, pred)
    mot, ids = clear_mot(gt, pred), identity_scores(gt, pred)
    assert mot.id_switches > 0 and mot.misses > 0  # the case exercises every error kind
    assert mot.id_switches == expected["num_switches"]
    assert mot.misses == expected["num_misses"]
    assert mot.false_positives == expected["num_false_positives"]
    assert mot.mota == pytest.approx(expected["mota"], abs=1e-12)
    assert 1 - mot.mean_iou == pytest.approx(expected["motp"], abs=1e-9)
    assert ids.idf1 == pytest.approx(expected["idf1"], abs=1e-12)
