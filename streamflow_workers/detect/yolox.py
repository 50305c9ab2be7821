"""YOLOX-nano object detection: letterbox, one batched inference, raw-head decoding, class-aware NMS.

The shipped ONNX (Megvii YOLOX-nano, 80 COCO classes) expects BGR pixels 0..255 without mean/std
normalisation, letterboxed into a square S x S input padded with 114 at the bottom/right (checked
on NGSIM: the normalised RGB input of YOLOX <= 0.1.0 finds almost nothing). Its head is raw:
per anchor (dx, dy, log w, log h) on grids of strides 8, 16, 32, then sigmoid objectness and
class scores, so decoding happens here.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from streamflow_workers.data import model_path
from streamflow_workers.errors import ModelLoadError, VariantError
from streamflow_workers.runtimes import load_runtime

MODEL_FILE = "yolox_nano.onnx"
STRIDES = (8, 16, 32)
PAD_VALUE = 114
NUM_CLASSES = 80


def letterbox(frame: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """Resize keeping aspect ratio into a size x size canvas of 114s (top-left aligned).

    Returns the CHW float32 image and the scale r (original pixel = input pixel / r)."""
    h, w = frame.shape[:2]
    r = min(size / h, size / w)
    nh, nw = int(h * r), int(w * r)  # truncation, as YOLOX's own preprocessing does
    canvas = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
    canvas[:nh, :nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas.transpose(2, 0, 1).astype(np.float32), r


@lru_cache(maxsize=16)
def anchor_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid cell offsets (A, 2) and strides (A, 1) for an S x S input, in the head's anchor order.

    Cached per size (read-only arrays): building it cost about 0.3 ms per call at 640."""
    grids, strides = [], []
    for stride in STRIDES:
        cells = size // stride
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grids.append(np.stack((xs, ys), axis=-1).reshape(-1, 2))
        strides.append(np.full((cells * cells, 1), stride))
    grid, stride = np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)
    grid.flags.writeable = stride.flags.writeable = False
    return grid, stride


def _boxes(raw: np.ndarray, grid: np.ndarray, stride: np.ndarray) -> np.ndarray:
    """Raw (dx, dy, log w, log h) rows -> x1, y1, x2, y2 in input pixels."""
    centre = (raw[..., 0:2] + grid) * stride
    half = np.exp(raw[..., 2:4]) * stride / 2
    return np.concatenate((centre - half, centre + half), axis=-1)


def decode(raw: np.ndarray, size: int) -> np.ndarray:
    """Raw head (N, A, 85) -> (N, A, 85) with boxes as x1, y1, x2, y2 in input pixels."""
    grid, stride = anchor_grid(size)
    if raw.shape[1] != len(grid):
        raise ValueError(f"head has {raw.shape[1]} anchors, expected {len(grid)} for input {size}")
    out = raw.copy()
    out[..., 0:4] = _boxes(raw, grid, stride)
    return out


def postprocess(decoded: np.ndarray, scale: float, score_threshold: float, nms_threshold: float,
                classes: np.ndarray | None = None, agnostic_nms: bool = False,
                raw_size: int | None = None) -> np.ndarray:
    """One frame's decoded anchors -> (K, 6) x1, y1, x2, y2, score, class_id in frame pixels.

    Each anchor takes its best class (among `classes` when given) with score obj * cls, then
    class-aware NMS keeps the best of overlapping boxes of the same class; `agnostic_nms` lets
    boxes of all kept classes suppress each other (one box per vehicle, whether car or truck).
    With `raw_size` the rows are the raw head at that input size and only the anchors that pass
    the threshold are decoded: the same boxes for a fraction of the work (8400 anchors at 640)."""
    if raw_size is not None:
        grid, stride = anchor_grid(raw_size)
        if len(decoded) != len(grid):
            raise ValueError(f"head has {len(decoded)} anchors, expected {len(grid)} for input {raw_size}")
    cls_scores = decoded[:, 5:]
    allowed = np.arange(cls_scores.shape[1]) if classes is None else classes
    cls_scores = cls_scores[:, allowed]
    best = cls_scores.argmax(axis=1)
    scores = decoded[:, 4] * cls_scores[np.arange(len(best)), best]
    keep = scores >= score_threshold
    if not keep.any():
        return np.zeros((0, 6), dtype=np.float32)
    boxes = decoded[keep, :4]
    if raw_size is not None:
        boxes = _boxes(boxes, grid[keep], stride[keep])
    boxes = boxes / scale
    scores, class_ids = scores[keep], allowed[best[keep]]
    xywh = np.column_stack((boxes[:, :2], boxes[:, 2:] - boxes[:, :2]))
    groups = np.zeros_like(class_ids) if agnostic_nms else class_ids
    kept = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(), groups.tolist(),
                                   score_threshold, nms_threshold)
    kept = np.asarray(kept, dtype=np.int64).reshape(-1)
    kept = kept[np.argsort(-scores[kept], kind="stable")]
    return np.column_stack((boxes[kept], scores[kept], class_ids[kept])).astype(np.float32)


class YoloxDetector:
    """YOLOX-nano at one square input size on one runtime and precision; `detect` is one batched
    inference. int8 quantises the model once per (model, size, calibration frames), calibrated on
    `calibration` (trace folders) letterboxed at this size, and caches it (streamflow_workers.runtimes.derived)."""

    def __init__(self, size: int = 416, runtime: str = "opencv", device: str = "cpu",
                 score_threshold: float = 0.3, nms_threshold: float = 0.45,
                 classes: list[int] | None = None, agnostic_nms: bool = False,
                 model: str | Path | None = None, precision: str = "fp32",
                 calibration: list[str] | None = None, calibration_frames: int = 16):
        if size <= 0 or size % 32:
            raise VariantError(f"YOLOX input size must be a positive multiple of 32, got {size}")
        if classes is not None and any(not 0 <= c < NUM_CLASSES for c in classes):
            raise VariantError(f"YOLOX classes must be COCO indices 0..{NUM_CLASSES - 1}, got {classes}")
        self.size = size
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.agnostic_nms = agnostic_nms
        self.classes = None if classes is None else np.asarray(sorted(set(classes)), dtype=np.int64)
        self.precision = precision
        path = Path(model or model_path(MODEL_FILE))
        if precision == "int8":
            from streamflow_workers.detect.calibration import calibration_frames as frames_of
            from streamflow_workers.runtimes.derived import int8_model_of_traces
            if not path.is_file():
                raise ModelLoadError(f"model file not found: {path}")
            if not calibration:
                raise ModelLoadError("int8 calibration needs trace folders ('calibration' parameter or the "
                                     "upstream source)")
            path = int8_model_of_traces(path, size, [str(c) for c in calibration], calibration_frames, lambda: [
                letterbox(f, size)[0][None] for f in frames_of(calibration, calibration_frames)],
                activations=runtime == "onnxruntime")
        self.runtime = load_runtime(runtime, path, device, precision)

    @property
    def device(self) -> str:
        return self.runtime.device

    def preprocess(self, frames: list[np.ndarray]) -> tuple[np.ndarray, list[float]]:
        """Letterbox every frame into one (N, 3, S, S) blob; returns it and the per-frame scales."""
        images, scales = zip(*(letterbox(f, self.size) for f in frames))
        blob = images[0][None] if len(images) == 1 else np.stack(images)  # one frame: a view, no copy
        return blob, list(scales)

    def detect(self, frames: list[np.ndarray], camera: str | None = None) -> list[np.ndarray]:
        """Detections per frame, (K, 6) float32: x1, y1, x2, y2, score, class_id in frame pixels."""
        if not frames:
            return []
        blob, scales = self.preprocess(frames)
        raw = self.runtime.infer(blob)
        return [postprocess(r, s, self.score_threshold, self.nms_threshold, self.classes, self.agnostic_nms,
                            raw_size=self.size) for r, s in zip(raw, scales)]
