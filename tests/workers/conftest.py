"""Shared fixtures: the offline data next to the repo (tests skip, saying why, when it is absent)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from streamflow_workers.data import shared_data_dir

cv2.setNumThreads(1)
torch.set_num_threads(1)


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (expected at <repo>/../shared/data)")
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _require(shared_data_dir())


@pytest.fixture(scope="session")
def yolox_path(data_dir) -> Path:
    return _require(data_dir / "models" / "yolox_nano.onnx")


@pytest.fixture(scope="session")
def osnet_path(data_dir) -> Path:
    return _require(data_dir / "models" / "osnet_x0_25_msmt17.onnx")


@pytest.fixture(scope="session")
def ngsim(data_dir) -> tuple[list[np.ndarray], dict[int, np.ndarray]]:
    """All frames of NGSIM camera 1 and its ground truth (every vehicle a car, class 2)."""
    from streamflow_traces.groundtruth import read_mot
    from streamflow_workers.video import read_frames

    video = _require(data_dir / "traces" / "ngsim_us101_cam1_640x480_3fps.mp4")
    truth = _require(data_dir / "traces" / "gt" / "ngsim_us101_cam1_640x480_3fps_gt_mot.txt")
    return list(read_frames(video)), read_mot(truth, class_id=2)


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory) -> Path:
    """Derived models (dynamic dims, int8) go to a per-session cache, not the user's."""
    import os
    path = tmp_path_factory.mktemp("model-cache")
    old = os.environ.get("STREAMFLOW_CACHE")
    os.environ["STREAMFLOW_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("STREAMFLOW_CACHE", None)
    else:
        os.environ["STREAMFLOW_CACHE"] = old
