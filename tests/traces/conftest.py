"""Fixtures for trace tests: the shared recorded clips (skipped when absent) and tiny videos."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from streamflow_traces.catalog import shared_clips, shared_data_dir
from streamflow_traces.importer import import_video


COUNTER_BITS = 6


def write_counter_video(path: Path, frames: int = 20, size: tuple[int, int] = (64, 48), fps: float = 10.0) -> Path:
    """A small mp4v video whose frame i shows i in binary as black/white bands, which survive
    lossy re-encoding, so decoders and recorders can be checked frame by frame."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    band = size[0] // COUNTER_BITS
    for i in range(frames):
        image = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        for bit in range(COUNTER_BITS):
            if i >> bit & 1:
                image[:, bit * band:(bit + 1) * band] = 255
        writer.write(image)
    writer.release()
    return path


def read_counter(image: np.ndarray) -> int:
    """The frame number a counter-video frame shows."""
    band = image.shape[1] // COUNTER_BITS
    return sum(1 << bit for bit in range(COUNTER_BITS)
               if image[:, bit * band + 2:(bit + 1) * band - 2].mean() > 128)


@pytest.fixture
def counter_video(tmp_path: Path) -> Path:
    return write_counter_video(tmp_path / "counter.mp4")


@pytest.fixture
def frame_number():
    """read_counter, for tests that check which frame they got."""
    return read_counter


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if path is None or not (path / "traces").is_dir():
        pytest.skip("shared data (<repo>/../shared/data/traces) is absent in this checkout")
    return path


@pytest.fixture(scope="session")
def imported(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every shared clip imported once: {clip name: (Clip, Trace)}."""
    root = tmp_path_factory.mktemp("imported")
    return {c.name: (c, import_video(c.video, root / c.name, groundtruth=c.groundtruth, class_label=c.class_label))
            for c in shared_clips(data_dir)}
