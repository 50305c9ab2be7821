"""Operators the channel and progress benchmarks name in their plans (`"kind": "python"`)."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from streamflow import Operator
from streamflow.dataflow.source import Source


class RangeSource(Source):
    """Ints 0..count-1 in batches of `batch` (lists of ints), split between the instances."""

    emits_carried = True  # lists of ints (or int64 blocks) built here: carried by construction

    def __init__(self, count: int, batch: int = 1000, numpy: bool = False) -> None:
        self.count, self.batch, self.numpy = count, batch, numpy
        self.next_batch = 0

    def on_start(self) -> None:
        self.next_batch = self.ctx.instance

    def poll(self, output: Any, budget: int) -> bool:
        step = self.ctx.instances
        for _ in range(budget):
            lo = self.next_batch * self.batch
            if lo >= self.count:
                self.close()
                return False
            hi = min(lo + self.batch, self.count)
            batch = np.arange(lo, hi, dtype=np.int64) if self.numpy else list(range(lo, hi))
            self.emit(output, self.next_batch, batch)
            self.next_batch += step
        return True


class FrameSource(Source):
    """`count` frames of `shape` (uint8), each a block of one frame, as fast as credits allow."""

    def __init__(self, count: int, shape: list[int]) -> None:
        self.count = count
        self.frame = np.random.default_rng(0).integers(0, 255, (1, *shape), dtype=np.uint8)
        self.sent = 0

    def poll(self, output: Any, budget: int) -> bool:
        for _ in range(budget):
            if self.sent >= self.count:
                self.close()
                return False
            self.emit(output, self.sent, self.frame)
            self.sent += 1
        return True


class CountSink(Operator):
    """Counts records; with `log`, writes when the first and the last batch arrived (so a
    benchmark can time the steady stream as raw pyzmq's receiver does, without start-up)."""

    n_outputs = 0

    def __init__(self, log: str | None = None) -> None:
        self.records = 0
        self.batches = 0
        self.log = log
        self.first = self.last = 0.0

    def on_batch(self, epoch: int, batch: Any, output: Any) -> None:
        if self.log is not None:
            self.last = time.perf_counter()
            if not self.batches:
                self.first = self.last
        self.records += len(batch)
        self.batches += 1

    def on_close(self) -> None:
        if self.log is not None:
            Path(self.log).write_text(json.dumps({"first": self.first, "last": self.last,
                                                  "batches": self.batches, "records": self.records}))


class TickSource(Source):
    """One record per epoch every `period_ms`; logs when it closed each epoch (CLOCK_MONOTONIC,
    system-wide on Linux, so other processes' times compare)."""

    def __init__(self, epochs: int, period_ms: float, log: str) -> None:
        self.epochs, self.period, self.log = epochs, period_ms / 1000, log
        self.next = 0
        self.due = 0.0
        self.closed: list[float] = []

    def on_start(self) -> None:
        self.due = time.monotonic() + 0.5

    def ready(self) -> bool:
        if time.monotonic() >= self.due:
            return True
        asyncio.get_running_loop().call_at(self.due, self.ctx.wake)
        return False

    def poll(self, output: Any, budget: int) -> bool:
        if self.next >= self.epochs:
            self.close()
            Path(self.log).write_text(json.dumps(self.closed))
            return False
        self.emit(output, self.next, [self.next])
        self.advance_to(self.next + 1)
        self.closed.append(time.monotonic())
        self.next += 1
        self.due += self.period
        return True


class NotifyLog(Operator):
    """Asks for a notification at every epoch and logs when each arrived."""

    n_outputs = 0

    def __init__(self, log: str) -> None:
        self.log = log
        self.times: dict[int, float] = {}

    def on_batch(self, epoch: int, batch: Any, output: Any) -> None:
        self.ctx.notify_at(epoch)

    def on_notify(self, epoch: int, output: Any) -> None:
        self.times[epoch] = time.monotonic()

    def on_close(self) -> None:
        Path(self.log).write_text(json.dumps(self.times))


class SleepySink(Operator):
    """Sleeps `ms` per batch on the event loop: a consumer slower than its producer."""

    n_outputs = 0

    def __init__(self, ms: float = 10.0) -> None:
        self.seconds = ms / 1000

    def on_batch(self, epoch: int, batch: Any, output: Any) -> None:
        time.sleep(self.seconds)
