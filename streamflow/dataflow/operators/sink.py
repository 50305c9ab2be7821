"""Sinks: JSON Lines files, callbacks, and probes that tell when an epoch has passed."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from streamflow.dataflow.operator import Batch, Operator, Output
from streamflow.progress import DONE


def to_json(obj: Any) -> Any:
    """json.dumps `default`: numpy arrays and scalars become lists and numbers."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def json_line(epoch: int, record: Any) -> str:
    """A dict record gains an "epoch" field; anything else is wrapped as {"epoch", "value"}."""
    if isinstance(record, dict):
        doc = record if "epoch" in record else {"epoch": epoch, **record}
    else:
        doc = {"epoch": epoch, "value": record}
    return json.dumps(doc, default=to_json, separators=(",", ":"))


EMITTED_AT = "emitted_at"
"""Record field a source sets to the wall time the record was captured (due on the run's clock;
at most the emission time); sinks then report end-to-end latency from it."""


def observe_latency(ctx: Any, batch: Batch) -> None:
    """Report now - record[EMITTED_AT] for dict records that carry it."""
    if len(batch) and isinstance(batch[0], dict) and EMITTED_AT in batch[0]:
        now = time.time()
        for r in batch:
            ctx.observe_latency((now - r[EMITTED_AT]) * 1000)


class JsonLinesSink(Operator):
    """Writes one JSON object per record to `path`, an epoch at a time once it is complete.

    Records wait in memory until the notification for their epoch; then the whole epoch is
    written and flushed. So the file holds whole epochs only: after a failure exactly the
    epochs that completed before it, whatever the timing. With several instances each writes
    `path` with `.<instance>` before the suffix.
    """

    n_outputs = 0

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.file: IO[str] | None = None
        self.records = 0
        self.pending: dict[int, list[str]] = {}
        self.resume_at: int | None = None  # file length at the checkpoint a run resumes from

    aligned = False  # it writes complete epochs only; later ones wait in `pending` anyway

    def snapshot(self, epoch: int) -> Any:
        """What is committed at `epoch`: the file holds exactly the epochs up to it."""
        return {"bytes": self.file.tell() if self.file is not None else 0, "records": self.records}

    def restore(self, state: Any) -> None:
        self.resume_at, self.records = int(state["bytes"]), int(state["records"])

    def on_start(self) -> None:
        path = self.path
        if self.ctx.instances > 1:
            path = path.with_name(f"{path.stem}.{self.ctx.instance}{path.suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        if self.resume_at is None:
            self.file = path.open("w")
            return
        # resuming: drop whatever was written after the checkpoint, then append
        self.file = path.open("a" if path.exists() else "w")
        self.file.truncate(self.resume_at)
        self.file.seek(self.resume_at)

    def on_batch(self, epoch: int, batch: Batch, output: Output) -> None:
        lines = self.pending.get(epoch)
        if lines is None:
            lines = self.pending[epoch] = []
            self.ctx.notify_at(epoch)
        lines += [json_line(epoch, r) + "\n" for r in batch]
        observe_latency(self.ctx, batch)

    def on_notify(self, epoch: int, output: Output) -> None:
        lines = self.pending.pop(epoch, None)
        if lines and self.file is not None:
            self.file.write("".join(lines))
            self.file.flush()
            self.records += len(lines)

    def on_close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class CallbackSink(Operator):
    """Calls fn(epoch, batch) for every batch; `on_epoch(epoch)` when an epoch completes."""

    n_outputs = 0

    def __init__(self, fn: Callable[[int, Batch], None],
                 on_epoch: Callable[[int], None] | None = None) -> None:
        self.fn = fn
        self.on_epoch = on_epoch

    def on_batch(self, epoch: int, batch: Batch, output: Output) -> None:
        self.fn(epoch, batch)
        if self.on_epoch is not None:
            self.ctx.notify_at(epoch)

    def on_notify(self, epoch: int, output: Output) -> None:
        if self.on_epoch is not None:
            self.on_epoch(epoch)


class ProbeOperator(Operator):
    """Consumes a stream so that its input frontier says which epochs have passed."""

    n_outputs = 0

    def __init__(self) -> None:
        self.handle: Probe | None = None

    def on_start(self) -> None:
        if self.handle is not None:
            self.handle._slots.append(self.ctx)

    def on_batch(self, epoch: int, batch: Batch, output: Output) -> None:
        pass


class Probe:
    """Tells the caller how far a stream has got: `passed(e)` once no record at <= e can appear."""

    def __init__(self) -> None:
        self._slots: list[Any] = []

    def frontier(self) -> int | float:
        """Least epoch that may still appear on the probed stream (inf once it is complete)."""
        if not self._slots:
            return 0
        return min(ctx.frontier() for ctx in self._slots)

    def passed(self, epoch: int) -> bool:
        return self.frontier() > epoch

    def done(self) -> bool:
        return self.frontier() == DONE
