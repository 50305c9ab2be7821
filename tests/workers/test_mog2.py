"""MOG2 on real clips: boxes on moving cars, per-camera state, AP50 on NGSIM."""
import numpy as np
import pytest

from streamflow.metrics.detection import average_precision, iou_matrix
from streamflow_workers.detect.filters import VEHICLES
from streamflow_workers.detect.mog2 import Mog2Detector
from streamflow_workers.detect.yolox import YoloxDetector
from streamflow_workers.video import read_frames


@pytest.fixture(scope="module")
def highway(data_dir):
    path = data_dir / "traces" / "highway_bgslibrary_320x240_60fps.avi"
    if not path.exists():
        pytest.skip(f"shared data not found: {path}")
    return list(read_frames(path, count=360))


def test_boxes_on_the_highway_are_sensible(highway, yolox_path):
    detector = Mog2Detector()
    out = detector.detect(highway)
    assert out[0].shape == (0, 6)  # warm-up frame: everything is foreground
    late = out[200:]
    assert sum(len(b) for b in late) > 100
    for boxes in late:
        assert boxes.dtype == np.float32 and boxes.shape[1] == 6
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 320).all() and (boxes[:, 3] <= 240).all()
        assert ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) >= 150).all()
        assert (boxes[:, 5] == 2).all() and ((boxes[:, 4] > 0) & (boxes[:, 4] <= 1)).all()
    # no ground truth here: most MOG2 boxes overlap a vehicle that YOLOX-nano@640 finds
    reference = YoloxDetector(640, score_threshold=0.3, classes=list(VEHICLES))
    hits = total = 0
    for index in range(200, 360, 20):
        ious = iou_matrix(out[index], reference.detect([highway[index]])[0])
        total += len(ious)
        hits += int((ious.max(axis=1) > 0.3).sum()) if ious.size else 0
    assert total > 0 and hits / total > 0.7


def test_background_model_is_per_camera(highway):
    detector = Mog2Detector()
    detector.detect(highway[:100], camera="a")
    assert detector.detect(highway[100:101], camera="b")[0].shape == (0, 6)  # b starts afresh
    assert len(detector.detect(highway[101:102], camera="a")[0]) > 0
    detector.reset("a")
    assert detector.detect(highway[102:103], camera="a")[0].shape == (0, 6)


def test_ap50_on_ngsim(ngsim):
    frames, truth = ngsim
    detections = Mog2Detector().detect(frames)
    assert average_precision(dict(enumerate(detections)), truth) > 0.3
