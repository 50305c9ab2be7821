"""Cut detection boxes out of a frame and turn crops into normalised NCHW blobs."""
from __future__ import annotations

import cv2
import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def crop_boxes(frame: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
    """Crops of `frame` for (K, >=4) boxes, clipped to the frame and at least 1x1 pixel."""
    h, w = frame.shape[:2]
    out = []
    for x1, y1, x2, y2 in np.asarray(boxes, dtype=np.float64)[:, :4].reshape(-1, 4):
        left = int(np.clip(np.floor(x1), 0, w - 1))
        top = int(np.clip(np.floor(y1), 0, h - 1))
        right = int(np.clip(np.ceil(x2), left + 1, w))
        bottom = int(np.clip(np.ceil(y2), top + 1, h))
        out.append(frame[top:bottom, left:right])
    return out


def imagenet_blob(crops: list[np.ndarray], width: int, height: int) -> np.ndarray:
    """BGR crops -> (K, 3, height, width) float32: RGB, resized, scaled to 0..1, ImageNet-normalised."""
    blob = np.empty((len(crops), 3, height, width), dtype=np.float32)
    for i, crop in enumerate(crops):
        rgb = cv2.cvtColor(cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
        blob[i] = ((rgb.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)
    return blob


def l2_normalise(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return (features / np.maximum(norms, 1e-12)).astype(np.float32)
