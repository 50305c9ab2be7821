"""OSNet-x0.25 (MSMT17) person re-identification embedder: 256x128 crops -> 512-d unit vectors.

The shipped ONNX froze batch 1 into its final Reshape; the runtimes free that axis (see
streamflow_workers.runtimes.onnx_graph), so crops run in batches of up to `max_batch` on cv2.dnn too.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from streamflow_workers.data import model_path
from streamflow_workers.embed.crops import crop_boxes, imagenet_blob, l2_normalise
from streamflow_workers.runtimes import load_runtime

MODEL_FILE = "osnet_x0_25_msmt17.onnx"
INPUT_HEIGHT, INPUT_WIDTH = 256, 128


class OsnetEmbedder:
    """Person appearance vectors; cosine similarity = dot product of two rows."""

    dim = 512

    def __init__(self, runtime: str = "opencv", device: str = "cpu", max_batch: int = 32,
                 model: str | Path | None = None):
        self.max_batch = max_batch
        self.runtime = load_runtime(runtime, model or model_path(MODEL_FILE), device)

    @property
    def device(self) -> str:
        return self.runtime.device

    def embed_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        """(K, 512) float32 unit vectors for BGR person crops."""
        if not crops:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self.runtime.infer(imagenet_blob(crops[i:i + self.max_batch], INPUT_WIDTH, INPUT_HEIGHT))
                 for i in range(0, len(crops), self.max_batch)]
        return l2_normalise(np.concatenate(parts).reshape(len(crops), -1))

    def embed(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Embed the (K, >=4) boxes of one frame."""
        return self.embed_crops(crop_boxes(frame, boxes))
