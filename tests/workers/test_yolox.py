"""YOLOX pre/post-processing by hand, and on real NGSIM frames: runtime agreement and AP50."""
import numpy as np
import pytest

from streamflow.metrics.detection import agreement, average_precision
from streamflow_workers.detect.filters import VEHICLES
from streamflow_workers.detect.yolox import YoloxDetector, anchor_grid, decode, letterbox, postprocess
from streamflow_workers.errors import VariantError


def test_letterbox_keeps_aspect_and_pads_with_114():
    frame = np.full((480, 640, 3), 7, np.uint8)
    image, scale = letterbox(frame, 320)
    assert image.shape == (3, 320, 320) and image.dtype == np.float32
    assert scale == pytest.approx(0.5)
    assert (image[:, :240, :] == 7).all() and (image[:, 240:, :] == 114).all()


def test_letterbox_keeps_bgr_order_and_raw_pixel_values():
    frame = np.zeros((32, 32, 3), np.uint8)
    frame[..., 0] = 200  # blue
    image, _ = letterbox(frame, 32)
    assert image[0].max() == 200 and image[2].max() == 0


def test_anchor_grid_order_and_strides():
    grid, stride = anchor_grid(64)
    assert len(grid) == 8 * 8 + 4 * 4 + 2 * 2
    assert grid[:3].tolist() == [[0, 0], [1, 0], [2, 0]]  # x runs fastest
    assert grid[8].tolist() == [0, 1]
    assert stride[0, 0] == 8 and stride[64, 0] == 16 and stride[-1, 0] == 32


def test_decode_zero_head_gives_stride_sized_boxes_on_cell_corners():
    raw = np.zeros((1, 84, 85), np.float32)
    out = decode(raw, 64)
    # anchor 9 is cell (1, 1) at stride 8: centre (8, 8), size exp(0) * 8
    assert out[0, 9, :4].tolist() == [4, 4, 12, 12]
    assert out[0, -1, :4].tolist() == [32 - 16, 32 - 16, 32 + 16, 32 + 16]


def _anchors(boxes, obj, cls_scores):
    rows = np.zeros((len(boxes), 85), np.float32)
    rows[:, :4] = boxes
    rows[:, 4] = obj
    for i, (c, s) in enumerate(cls_scores):
        rows[i, 5 + c] = s
    return rows


def test_postprocess_class_aware_nms_and_original_pixels():
    decoded = _anchors([[10, 10, 50, 50], [12, 12, 52, 52], [11, 11, 51, 51], [200, 200, 240, 260]],
                       [0.9, 0.8, 0.9, 0.5], [(2, 0.9), (2, 0.7), (7, 0.6), (0, 0.8)])
    out = postprocess(decoded, 0.5, 0.1, 0.45)
    # car 0.81 suppresses car 0.56; the truck at the same place survives class-aware NMS
    assert out[:, 5].tolist() == [2, 7, 0]
    np.testing.assert_allclose(out[:, 4], [0.81, 0.54, 0.40], atol=1e-6)
    np.testing.assert_allclose(out[0, :4], [20, 20, 100, 100])
    assert out.dtype == np.float32 and out.shape == (3, 6)


def test_postprocess_agnostic_nms_and_class_restriction():
    decoded = _anchors([[10, 10, 50, 50], [11, 11, 51, 51]], [0.9, 0.9], [(2, 0.9), (7, 0.6)])
    assert postprocess(decoded, 1.0, 0.1, 0.45, agnostic_nms=True)[:, 5].tolist() == [2]
    decoded[1, 5 + 4] = 0.95  # best class airplane, but a truck when restricted to vehicles
    restricted = postprocess(decoded, 1.0, 0.1, 0.45, classes=np.array(VEHICLES))
    assert restricted[:, 5].tolist() == [2, 7]
    assert postprocess(decoded, 1.0, 0.95, 0.45).shape == (0, 6)


def test_decoding_only_the_kept_anchors_gives_the_same_boxes():
    rng = np.random.default_rng(3)
    raw = rng.uniform(-2, 2, (1, 84, 85)).astype(np.float32)
    raw[..., 4:] = rng.uniform(0, 1, (1, 84, 81)) ** 4  # few anchors above the threshold
    for agnostic, classes in ((False, None), (True, np.array(VEHICLES))):
        full = postprocess(decode(raw, 64)[0], 0.7, 0.05, 0.45, classes, agnostic)
        kept = postprocess(raw[0], 0.7, 0.05, 0.45, classes, agnostic, raw_size=64)
        assert len(full) > 3
        np.testing.assert_allclose(kept, full, rtol=1e-6)
    with pytest.raises(ValueError, match="expected 336"):
        postprocess(raw[0], 1.0, 0.05, 0.45, raw_size=128)


def test_bad_size_or_class_is_a_variant_error():
    with pytest.raises(VariantError, match="multiple of 32"):
        YoloxDetector(300)
    with pytest.raises(VariantError, match="COCO indices"):
        YoloxDetector(320, classes=[80])


@pytest.fixture(scope="module")
def sample(ngsim):
    frames, truth = ngsim
    picked = list(range(0, len(frames), 15))
    return [frames[i] for i in picked], {j: truth.get(i, np.zeros((0, 6))) for j, i in enumerate(picked)}


def _vehicle_detector(size, runtime, threshold=0.01):
    return YoloxDetector(size, runtime=runtime, score_threshold=threshold, classes=list(VEHICLES), agnostic_nms=True)


def test_one_batched_inference_per_call_equals_single_frames(yolox_path, sample):
    frames = sample[0][:3]
    detector = _vehicle_detector(320, "opencv", 0.3)
    calls = []
    infer = detector.runtime.infer
    detector.runtime.infer = lambda blob: calls.append(blob.shape) or infer(blob)
    batched = detector.detect(frames)
    assert calls == [(3, 3, 320, 320)]
    for frame, boxes in zip(frames, batched):
        np.testing.assert_allclose(boxes, detector.detect([frame])[0], atol=1e-3)
    assert detector.detect([]) == []


@pytest.mark.parametrize("size", [320, 416, 640])
def test_opencv_and_torch_runtimes_agree_on_ngsim(yolox_path, sample, size):
    frames = sample[0][:4]
    opencv = _vehicle_detector(size, "opencv").detect(frames)
    torch_ = _vehicle_detector(size, "torch").detect(frames)
    assert sum(len(d) for d in opencv) > 40
    result = agreement(dict(enumerate(opencv)), dict(enumerate(torch_)))
    assert result.mean_iou > 0.99
    assert result.max_count_difference <= 1


def test_ap50_for_cars_rises_from_320_to_960(yolox_path, sample):
    frames, truth = sample
    ap = {}
    for size in (320, 960):
        detections = [_vehicle_detector(size, "opencv").detect([f])[0] for f in frames]
        ap[size] = average_precision(dict(enumerate(detections)), truth)
    assert ap[960] > ap[320] + 0.1
    assert ap[960] > 0.7


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_int8_keeps_the_accuracy_of_fp32(yolox_path, sample, runtime):
    """Quantising the SiLUs after an fp32 convolution, or the head, took AP50 at 640 to 0.01-0.63:
    what is quantised must keep AP50 near fp32's on frames it was not calibrated on."""
    from streamflow_workers.data import REPO_ROOT
    frames, truth = sample
    fp32 = _vehicle_detector(416, runtime)
    int8 = YoloxDetector(416, runtime=runtime, score_threshold=0.01, classes=list(VEHICLES), agnostic_nms=True,
                         precision="int8", calibration=[str(REPO_ROOT / "traces" / "clips" / "ngsim_cam2")],
                         calibration_frames=8)
    ap = {name: average_precision(dict(enumerate(d.detect([f])[0] for f in frames)), truth)
          for name, d in (("fp32", fp32), ("int8", int8))}
    assert ap["fp32"] > 0.6 and abs(ap["int8"] - ap["fp32"]) < 0.08, ap
