"""Where the shared offline data lives (models, traces, ground truth); it is never downloaded."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """$STREAMFLOW_DATA, else `<repo>/../shared/data` (it may not exist; loaders report that)."""
    env = os.environ.get("STREAMFLOW_DATA")
    return Path(env) if env else (REPO_ROOT / ".." / "shared" / "data").resolve()


def model_path(file_name: str) -> Path:
    """Path of a model file in the shared data folder."""
    return shared_data_dir() / "models" / file_name
