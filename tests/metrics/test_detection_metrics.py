"""Detection metrics against hand-computed cases."""
import numpy as np
import pytest

from streamflow.metrics.detection import (agreement, average_precision, count_errors, iou_matrix,
                                          match_greedy, precision_recall, select_classes)


def det(*rows):
    return np.array([list(r) + [2] * (6 - len(r)) for r in rows], dtype=np.float64).reshape(-1, 6)


def gt(*rows):
    return np.array([list(r) + [-1, 2] for r in rows], dtype=np.float64).reshape(-1, 6)


def test_iou_by_hand():
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    expected = [[50 / 150, 0, 1], [0, 0, 4 / 100]]
    np.testing.assert_allclose(iou_matrix(a, b), expected)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)
    assert iou_matrix(a, np.zeros(0)).shape == (2, 0)
    assert iou_matrix([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0, 0] == 0  # degenerate boxes


def test_greedy_matching_goes_by_score_then_best_iou():
    truth = gt((0, 0, 10, 10), (6, 0, 16, 10))
    # the low-score detection overlaps truth 0 best, but the high-score one claims it first
    dets = det((1, 0, 11, 10, 0.9), (0, 0, 10, 10, 0.5), (100, 100, 110, 110, 0.8))
    m = match_greedy(dets, truth)
    assert m.detection.tolist() == [0] and m.truth.tolist() == [0]
    assert m.iou[0] == pytest.approx(90 / 110)
    # detection 1 then finds truth 1 at IoU 40/160 = 0.25: matched only with a low threshold
    assert match_greedy(dets, truth, 0.2).truth.tolist() == [0, 1]
    assert len(match_greedy(det(), truth).detection) == 0
    assert len(match_greedy(dets, gt()).detection) == 0


def test_ap_101_point_by_hand():
    truth = {0: gt((0, 0, 10, 10)), 1: gt((0, 0, 10, 10))}
    detections = {0: det((0, 0, 10, 10, 0.9), (50, 50, 60, 60, 0.8)), 1: det((1, 1, 10, 10, 0.7))}
    # ranked: TP, FP, TP -> recall .5 .5 1, precision 1 .5 .667; envelope 1 .667 .667
    expected = (51 * 1.0 + 50 * (2 / 3)) / 101
    assert average_precision(detections, truth) == pytest.approx(expected)


def test_ap_edge_cases():
    truth = {0: gt((0, 0, 10, 10))}
    assert average_precision({0: det((0, 0, 10, 10, 0.5))}, truth) == pytest.approx(1.0)
    assert average_precision({}, truth) == 0.0
    assert np.isnan(average_precision({0: det((0, 0, 10, 10, 0.5))}, {}))
    # a duplicate detection is a false positive after the recall of 1 is reached: AP stays 1
    assert average_precision({0: det((0, 0, 10, 10, 0.9), (0, 0, 10, 10, 0.8))}, truth) == pytest.approx(1.0)
    # half the objects found, perfect precision: recall points 0..0.5 count, 0.51..1 do not
    two = {0: gt((0, 0, 10, 10), (20, 20, 30, 30))}
    assert average_precision({0: det((0, 0, 10, 10, 0.9))}, two) == pytest.approx(51 / 101)
    # lists index frames 0..N-1 as dicts do
    assert average_precision([det((0, 0, 10, 10, 0.9))], [two[0]]) == pytest.approx(51 / 101)


def test_precision_recall_and_count_error():
    truth = {0: gt((0, 0, 10, 10), (20, 0, 30, 10)), 1: gt((0, 0, 10, 10))}
    detections = {0: det((0, 0, 10, 10, 0.9), (40, 40, 50, 50, 0.2)), 1: det((0, 0, 10, 10, 0.6), (0, 20, 5, 25, 0.7))}
    pr = precision_recall(detections, truth, score_threshold=0.5)
    assert (pr.true_positives, pr.false_positives, pr.false_negatives) == (2, 1, 1)
    assert pr.precision == pytest.approx(2 / 3) and pr.recall == pytest.approx(2 / 3)
    assert pr.f1 == pytest.approx(2 / 3)
    assert count_errors(detections, truth, 0.5).tolist() == [-1, 1]
    assert count_errors(detections, truth, 0.0).tolist() == [0, 1]
    assert count_errors(detections, truth, frames=[1, 2]).tolist() == [1, 0]


def test_select_classes():
    boxes = det((0, 0, 1, 1, 0.5, 2), (0, 0, 1, 1, 0.5, 7), (0, 0, 1, 1, 0.5, 0))
    assert select_classes(boxes, [2, 7])[:, 5].tolist() == [2, 7]
    assert len(select_classes(boxes, None)) == 3
    assert select_classes(gt((0, 0, 1, 1)), [2]).shape == (1, 6)


def test_agreement():
    a = {0: det((0, 0, 10, 10, 0.9), (20, 0, 30, 10, 0.8)), 1: det((0, 0, 10, 10, 0.9))}
    b = {0: det((0, 0, 10, 11, 0.9), (20, 0, 30, 10, 0.8)), 1: det()}
    result = agreement(a, b)
    assert result.mean_iou == pytest.approx((100 / 110 + 1) / 2)
    assert result.matched_fraction == pytest.approx(2 / 3)
    assert result.max_count_difference == 1
