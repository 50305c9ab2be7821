"""Operators for multi-process tests, named in plans as `{"kind": "python", "class": ...}`."""
from __future__ import annotations

import time
from typing import Any

from streamflow import Operator


class SleepySink(Operator):
    """Sleeps `ms` per batch on the event loop: a consumer slower than its producer."""

    n_outputs = 0

    def __init__(self, ms: float = 10.0) -> None:
        self.seconds = ms / 1000
        self.frames = 0

    def on_batch(self, epoch: int, batch: Any, output: Any) -> None:
        time.sleep(self.seconds)
        self.frames += 1
