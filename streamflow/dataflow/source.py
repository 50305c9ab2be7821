"""Sources: operators without inputs that hold a capability and advance it as epochs close."""
from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import AsyncIterable, Callable, Iterable, Iterator
from typing import Any

from streamflow.dataflow.operator import Batch, Capability, Operator, Output
from streamflow.errors import CapabilityError


class Source(Operator):
    """Base of sources: `poll` emits up to `budget` batches through `emit` and says if more follow.

    The worker gives every source instance a capability at epoch 0 before the dataflow starts;
    epochs from one source never decrease, and closing the source drops its capability.
    """

    n_inputs = 0
    capability: Capability

    def poll(self, output: Output, budget: int) -> bool:
        """Emit up to `budget` batches; return False once the source is exhausted (and closed)."""
        raise TypeError(f"{type(self).__name__} must implement poll")

    resume_epoch: int = 0
    """The first epoch this instance emits: 0, or one after the checkpoint a run resumes from."""

    def resume_after(self, epoch: int) -> None:
        """Emit nothing at or before `epoch`: the run resumes after a checkpoint (called before
        `on_start`). Sources must then emit exactly what they would have emitted after `epoch`
        (trace sources seek, generators are deterministic); the default skips earlier items."""
        self.resume_epoch = epoch + 1

    def ready(self) -> bool:
        """Whether `poll` has something to do now (async sources wait for their producer)."""
        return True

    pause_at: float = math.inf
    """Epochs at or after it are held back, not emitted: a drain before a live switch
    (cluster/handover.py). The capability then waits at `pause_at`, so every earlier epoch can
    complete downstream while none after it starts."""
    held_back: list[tuple[int, Batch]] = []  # per instance once something is held (see emit)
    closing = False  # exhausted while something is held back: the capability waits for it

    def emit(self, output: Output, epoch: int, batch: Batch) -> None:
        """Emit `batch` at `epoch`, first advancing the capability to it."""
        if epoch >= self.pause_at:
            if not self.held_back:
                self.held_back = []
            self.held_back.append((epoch, batch))
            self.advance_to(int(self.pause_at))
            return
        cap = self.capability
        if epoch != cap.epoch:
            if epoch < cap.epoch:
                raise CapabilityError(f"source {self.ctx.name!r}: epoch {epoch} after epoch "
                                      f"{cap.epoch}; a source's epochs must not decrease")
            cap.downgrade(epoch)
        output.give_held(batch, epoch)

    def advance_to(self, epoch: int) -> None:
        """Declare every epoch below `epoch` complete for this source, without emitting."""
        if epoch > self.capability.epoch:
            self.capability.downgrade(epoch)

    def close(self) -> None:
        """No more records from this source instance (once what is held back has gone)."""
        if self.held_back:
            self.closing = True
            return
        self.capability.drop()

    def past(self, epoch: float) -> bool:
        """Whether this instance may already have emitted at or after `epoch` (its capability
        is at or past it, and not because an earlier pause put it there)."""
        cap = self.capability
        return cap.live and cap.epoch >= epoch and epoch < self.pause_at

    def release(self, output: Output) -> None:
        """Emit what is held back before `pause_at` (the pause moved later, or was lifted)."""
        held, self.held_back = self.held_back, []
        for epoch, batch in held:
            self.emit(output, epoch, batch)
        if self.closing and not self.held_back:
            self.closing = False
            self.capability.drop()


MERGE_RECORDS = 1024
"""Records an IterableSource gathers into one batch at most (timely's output buffer size)."""

POLL_RECORDS = 4 * MERGE_RECORDS
"""Records after which an IterableSource ends a poll early: the batches it emitted are then
still in the CPU cache when the operators downstream handle them in the same step."""


class IterableSource(Source):
    """A source over an iterable of (epoch, batch) pairs, pulled synchronously by the worker.

    Consecutive list batches of one epoch are gathered into one batch of up to MERGE_RECORDS
    records before they are pushed, as timely's output buffers gather what a session gives:
    records given one at a time then pay the per-batch costs once per buffer. Batch boundaries
    carry no meaning in the dataflow, only epochs do. The source reads one item ahead to know
    where a buffer ends, so it is meant for data at rest (lists, ranges, files); a live feed
    belongs in an AsyncIterableSource.
    """

    def __init__(self, items: Iterable[tuple[int, Batch]] | Callable[[Any], Iterable[tuple[int, Batch]]]) -> None:
        self._items = items
        self._iter: Iterator[tuple[int, Batch]] | None = None
        self._ahead: tuple[int, Batch] | None = None  # read, not yet emitted

    def on_start(self) -> None:
        items = self._items(self.ctx) if callable(self._items) else self._items
        self._iter = iter(items)
        if self.resume_epoch:
            first = self.resume_epoch
            self._iter = ((e, b) for e, b in self._iter if e >= first)

    def poll(self, output: Output, budget: int) -> bool:
        assert self._iter is not None
        emit = self.emit
        item = self._ahead
        if item is None:
            item = next(self._iter, None)
            if item is None:
                self.close()
                return False
        emitted = 0
        for _ in range(budget):
            if emitted >= POLL_RECORDS:
                break
            epoch, batch = item
            owned = False
            for item in self._iter:
                if item[0] != epoch or type(batch) is not list or type(item[1]) is not list \
                        or len(batch) + len(item[1]) > MERGE_RECORDS:
                    break
                if owned:
                    batch.extend(item[1])
                else:  # the first batch may be the caller's list: never extend it in place
                    batch, owned = batch + item[1], True
            else:
                emit(output, epoch, batch)
                self._ahead = None
                self.close()
                return False
            emit(output, epoch, batch)
            emitted += len(batch)
        self._ahead = item
        return True


class AsyncIterableSource(Source):
    """A source over an async iterable (a paced replay, a socket): a task fills a short queue.

    The queue holds at most `prefetch` batches, so a producer faster than the dataflow waits.
    """

    def __init__(self, items: AsyncIterable[tuple[int, Batch]] | Callable[[Any], AsyncIterable[tuple[int, Batch]]],
                 prefetch: int = 4) -> None:
        self._items = items
        self._queue: deque[tuple[int, Batch]] = deque()
        self._space = asyncio.Event()
        self._prefetch = prefetch
        self._done = False
        self._error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    def on_start(self) -> None:
        items = self._items(self.ctx) if callable(self._items) else self._items
        self._task = asyncio.get_running_loop().create_task(self._pump(items))

    async def _pump(self, items: AsyncIterable[tuple[int, Batch]]) -> None:
        first = self.resume_epoch
        try:
            async for item in items:
                if item[0] < first:
                    continue
                while len(self._queue) >= self._prefetch:
                    self._space.clear()
                    await self._space.wait()
                self._queue.append(item)
                self.ctx.wake()
        except Exception as exc:  # surfaced from poll, on the worker's loop
            self._error = exc
        self._done = True
        self.ctx.wake()

    def ready(self) -> bool:
        return bool(self._queue) or self._done

    def poll(self, output: Output, budget: int) -> bool:
        if self._error is not None:
            raise self._error
        queue = self._queue
        for _ in range(min(budget, len(queue))):
            epoch, batch = queue.popleft()
            self.emit(output, epoch, batch)
        self._space.set()
        if self._done and not queue:
            self.close()
            return False
        return True

    def on_close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
