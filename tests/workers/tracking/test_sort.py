"""SORT: ids, confirmation, ageing, class gating, per-camera state, and accuracy on PETS09."""
from __future__ import annotations

import numpy as np
import pytest

from streamflow.metrics.tracking import clear_mot, identity_scores
from streamflow_traces.catalog import shared_data_dir
from streamflow_traces.groundtruth import read_mot
from streamflow_workers.tracking.sort import TRACK_COLUMNS, CameraTrackers, Tracker


def det(x: float, y: float, cls: int = 0, w: float = 20, h: float = 40, score: float = 0.9) -> list[float]:
    return [x, y, x + w, y + h, score, cls]


def test_one_moving_object_keeps_its_id_and_is_followed() -> None:
    tracker = Tracker()
    for f in range(20):
        out = tracker.update(np.array([det(10 + 3 * f, 50)]))
        assert out.shape == (1, len(TRACK_COLUMNS))
        assert out[0, 4] == 1 and out[0, 7] == 0
        if f >= 5:  # the filter has learnt the velocity
            np.testing.assert_allclose(out[0, :4], det(10 + 3 * f, 50)[:4], atol=1.5)


def test_new_tracks_wait_for_min_hits_after_the_first_frames() -> None:
    tracker = Tracker(min_hits=3)
    shown = []
    for f in range(10):
        dets = [det(10, 10)] + ([det(200, 10)] if f >= 5 else [])
        shown.append(sorted(tracker.update(np.array(dets))[:, 4].tolist()))
    assert shown[:5] == [[1]] * 5
    assert shown[5] == [1] and shown[6] == [1]  # the newcomer's first two hits are not reported
    assert shown[7] == [1, 2]


def test_max_age_bridges_short_gaps_only() -> None:
    tracker = Tracker(max_age=2, min_hits=1)
    seen = [tracker.update(np.array([det(10, 10)]))[:, 4].tolist() for _ in range(3)]
    seen += [tracker.update(np.zeros((0, 6))).tolist() for _ in range(2)]  # 2 frames missing
    seen.append(tracker.update(np.array([det(10, 10)]))[:, 4].tolist())
    assert seen == [[1], [1], [1], [], [], [1]]
    for _ in range(3):  # now 3 frames missing: beyond max_age
        tracker.update(np.zeros((0, 6)))
    assert tracker.update(np.array([det(10, 10)]))[:, 4].tolist() == [2]
    finished = tracker.pop_finished()
    assert [(t.track_id, t.first_frame, t.last_frame, t.hits) for t in finished] == [(1, 0, 5, 4)]


def test_close_finishes_live_confirmed_tracks_only() -> None:
    tracker = Tracker(min_hits=3)
    for f in range(5):
        tracker.update(np.array([det(10, 10)] + ([det(300, 10)] if f == 4 else [])), frame=100 + f)
    finished = tracker.close()
    assert [(t.track_id, t.first_frame, t.last_frame) for t in finished] == [(1, 100, 104)]
    assert tracker.tracks == [] and tracker.close() == []


def test_classes_do_not_share_tracks() -> None:
    tracker = Tracker(min_hits=1)
    tracker.update(np.array([det(10, 10, cls=0)]))
    out = tracker.update(np.array([det(11, 10, cls=2)]))  # same place, other class
    assert out[:, 4].tolist() == [2] and out[:, 5].tolist() == [2]
    blind = Tracker(min_hits=1, class_aware=False)
    blind.update(np.array([det(10, 10, cls=0)]))
    assert blind.update(np.array([det(11, 10, cls=2)]))[:, 4].tolist() == [1]


def test_det_index_points_at_the_detection_row() -> None:
    tracker = Tracker(min_hits=1)
    tracker.update(np.array([det(10, 10), det(200, 10)]))
    out = tracker.update(np.array([det(201, 10), det(300, 300), det(11, 10)]))
    by_id = {int(r[4]): int(r[7]) for r in out}
    assert by_id == {1: 2, 2: 0, 3: 1}


def test_report_detection_boxes() -> None:
    tracker = Tracker(min_hits=1, report="detection")
    tracker.update(np.array([det(10, 10)]))
    out = tracker.update(np.array([det(14, 12)]))
    np.testing.assert_allclose(out[0, :4], det(14, 12)[:4])
    with pytest.raises(ValueError):
        Tracker(report="median")


def test_detections_without_score_or_class_columns() -> None:
    tracker = Tracker(min_hits=1)
    out = tracker.update(np.array([[10, 10, 30, 50]]))
    assert out[0, 4] == 1 and out[0, 5] == -1
    with pytest.raises(ValueError):
        tracker.update(np.array([[1, 2, 3]]))


def test_state_is_per_camera() -> None:
    bank = CameraTrackers(min_hits=1)
    a = bank.update("cam1", np.array([det(10, 10)]))
    b = bank.update("cam2", np.array([det(10, 10), det(100, 10)]))
    assert a[:, 4].tolist() == [1] and b[:, 4].tolist() == [1, 2]
    assert bank.update("cam1", np.array([det(11, 10)]))[:, 4].tolist() == [1]
    closed = bank.close(["cam2"])
    assert [t.track_id for t in closed["cam2"]] == [1, 2] and list(bank.trackers) == ["cam1"]


@pytest.fixture(scope="module")
def pets_gt() -> dict[int, np.ndarray]:
    data = shared_data_dir()
    if data is None:
        pytest.skip("shared data (<repo>/../shared/data) is absent")
    raw = read_mot(data / "traces" / "gt" / "pets09_s2l1_gt_mot15_480x360.txt", class_id=0)
    return {f: raw.get(f, np.zeros((0, 6))) for f in range(795)}


@pytest.mark.parametrize("jitter", [0.0, 0.03])
def test_sort_fed_with_pets09_ground_truth(pets_gt: dict, jitter: float) -> None:
    rng = np.random.default_rng(0)
    tracker, pred = Tracker(max_age=3, min_hits=3), {}
    for f, boxes in pets_gt.items():
        d = boxes.copy()
        d[:, 4] = 1.0  # score column
        size = np.c_[d[:, 2] - d[:, 0], d[:, 3] - d[:, 1], d[:, 2] - d[:, 0], d[:, 3] - d[:, 1]]
        d[:, :4] += rng.normal(0, jitter, (len(d), 4)) * size
        pred[f] = tracker.update(d)[:, :6]
    mot, ids = clear_mot(pets_gt, pred), identity_scores(pets_gt, pred)
    print(f"\nPETS09 GT as detections, jitter {jitter:.0%} of box size: MOTA {mot.mota:.4f} "
          f"IDF1 {ids.idf1:.4f} switches {mot.id_switches} misses {mot.misses} FP {mot.false_positives}")
    assert mot.mota > 0.95
    assert ids.idf1 > 0.9


def test_a_confirmed_track_is_reported_again_right_after_a_missed_frame() -> None:
    tracker = Tracker(max_age=3, min_hits=3)
    for _ in range(5):
        tracker.update(np.zeros((0, 6)))  # past the stream's first frames
    shown = [tracker.update(np.array([det(10, 10)]))[:, 4].tolist() for _ in range(3)]
    tracker.update(np.zeros((0, 6)))  # one missed detection
    shown.append(tracker.update(np.array([det(10, 10)]))[:, 4].tolist())
    assert shown == [[], [], [1], [1]]
