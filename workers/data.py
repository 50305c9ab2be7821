"""Where the shared offline data lives: `<repo>/../shared/data` (models, traces, ground truth)."""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The shared data folder next to the repository; it is never downloaded."""
    return (REPO_ROOT / ".." / "shared" / "data").resolve()


def model_path(file_name: str) -> Path:
    """Path of a model file in the shared data folder (it may not exist; loaders report that)."""
    return shared_data_dir() / "models" / file_name
