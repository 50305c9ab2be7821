"""Operators for multi-process tests, named in plans as `{"kind": "python", "class": ...}`."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from streamflow import Operator
from streamflow.dataflow.source import Source


class FrameSource(Source):
    """`count` numpy frames of `nbytes` each, one per epoch, as fast as the dataflow takes them."""

    def __init__(self, count: int, nbytes: int = 1 << 20) -> None:
        self.count = count
        self.nbytes = nbytes
        self.sent = 0

    def poll(self, output: Any, budget: int) -> bool:
        for _ in range(budget):
            if self.sent >= self.count:
                self.close()
                return False
            frame = np.full((1, self.nbytes), self.sent % 251, dtype=np.uint8)  # a block of one frame
            self.emit(output, self.sent, frame)
            self.sent += 1
        return True


class SleepySink(Operator):
    """Sleeps `ms` per batch on the event loop: a consumer slower than its producer."""

    n_outputs = 0

    def __init__(self, ms: float = 10.0) -> None:
        self.seconds = ms / 1000
        self.frames = 0

    def on_batch(self, epoch: int, batch: Any, output: Any) -> None:
        assert int(batch[0, 0]) == epoch % 251
        time.sleep(self.seconds)
        self.frames += 1
