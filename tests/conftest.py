"""Shared fixtures: where the offline data set lives."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data next to the repository (traces, models, planning problems)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"offline data set not found at {SHARED_DATA} (clone next to ../shared/data)")
    return SHARED_DATA
