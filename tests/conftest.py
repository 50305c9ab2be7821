"""Shared fixtures: where the offline data set lives."""
from __future__ import annotations

from pathlib import Path

import pytest

from streamflow_traces.catalog import shared_data_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The offline data set (traces, models, planning problems): ../shared/data next to the
    repository, or $STREAMFLOW_DATA."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("offline data set not found: clone next to ../shared/data or set STREAMFLOW_DATA")
    return path
