"""Aligned checkpoints at completed epochs, taken by each worker without stopping the dataflow.

Every `every` epochs (checkpoint epochs c = every-1, 2*every-1, ... known to every process from
the plan, or announced once the sources are paused for a live switch) each stateful operator
instance snapshots its state as of the end of c.

Why the snapshots form a consistent cut (the argument Flink makes with barriers, here with
frontiers): an instance snapshots at c only when (1) its input frontier has passed c, so every
record at or before c has been handled, (2) every notification at or before c was delivered and
none after c, so whatever it emits for epochs up to c has been emitted, and (3) it has handled
no input after c: such batches wait in `deferred` until the snapshot is taken (operators whose
state mixes epochs; those that keep later epochs apart themselves, like sinks that write only
complete epochs, set `aligned = False`; windowed operators at a window's last epoch leave later
windows out, `aligned_at`). So each snapshot is a function of exactly the records
at or before c. Every record after c comes from a source emitting after c (a source's epochs
never decrease, and operators emit at or after the epoch they handle), or from state a snapshot
holds and releases at a notification it restores. The one thing this needs of operators: output
for an epoch after c made from input at or before c must wait in the operator's snapshot for a
notification (`ctx.notify_at`), as the aggregate's windows, the tracker's frames and the
cross-camera windows do; a capability retained with `ctx.retain` across c for such output is
not checkpointed, and what it would emit is lost on a restore (the batching operators retain
capabilities only at the epochs of their input, which is safe). Restoring every
instance's snapshot and replaying the sources from c+1 therefore reproduces the undisturbed run:
nothing is lost, and nothing is applied twice, because state after c is discarded everywhere
and sinks truncate to what they had written at c. Notifications an instance had requested for
epochs after c are part of its snapshot and are requested again, holding their capabilities
from the first progress view of the restored run, so no notification fires early after a
restore. Deferring input cannot deadlock: deferred batches are counted as consumed for flow
control (their credit is granted), and the frontier at c depends only on records at or before
c, which are never deferred.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streamflow.dataflow.operator import Operator
from streamflow.progress import DONE

if TYPE_CHECKING:  # pragma: no cover
    from streamflow.dataflow.worker import OperatorSlot, Worker


@dataclass
class Snapshot:
    """One instance's state at the end of checkpoint epoch `epoch`."""

    epoch: int
    operator: str
    instance: int
    state: Any
    notify: list[int]  # notifications it had requested for epochs after `epoch`


LOOKAHEAD = 64  # schedule points searched for the next one that needs alignment


def is_stateful(op: Operator) -> bool:
    """Operators that override `snapshot` keep state across epochs."""
    return type(op).snapshot is not Operator.snapshot


def next_checkpoint(after: int, every: int) -> int:
    """The first checkpoint epoch of the schedule (every-1, 2*every-1, ...) at or after `after`."""
    return max(every - 1, math.ceil((after + 1) / every) * every - 1)


class Checkpointer:
    """The checkpoint schedule of one worker and the snapshots its stateful instances owe."""

    def __init__(self, worker: "Worker", every: int | None, start_epoch: int,
                 on_snapshot: Callable[[Snapshot], None]) -> None:
        self.worker = worker
        self.every = every
        self.on_snapshot = on_snapshot
        self.extra: list[int] = []  # announced checkpoint epochs (a live switch), ascending
        self.slots = [s for s in worker.ordered if not s.is_source and is_stateful(s.op)]
        self.due: dict[int, int] = {}  # slot index -> the checkpoint epoch it owes next
        for slot in self.slots:
            self._schedule(slot, start_epoch - 1)

    def _points(self, after: int) -> Iterator[int]:
        """Checkpoint epochs after `after`, ascending: the schedule's and the announced ones."""
        extra = [c for c in self.extra if c > after]
        c = next_checkpoint(after + 1, self.every) if self.every else None
        while extra or c is not None:
            if c is None or (extra and extra[0] <= c):
                point = extra.pop(0)
                if point == c:
                    c += self.every
            else:
                point, c = c, c + self.every  # type: ignore[operator]
            yield point

    def _schedule(self, slot: "OperatorSlot", after: int) -> None:
        """The slot's next checkpoint is the first point after `after`. Input waits after the
        first coming point that needs alignment (not necessarily the next one: an instance that
        handled later input while only unaligned points were due could not take it)."""
        points = self._points(after)
        c = next(points, None)
        if c is None:
            self.due.pop(slot.index, None)
            slot.hold_after = math.inf
            return
        self.due[slot.index] = c
        slot.hold_after = math.inf
        for i, p in enumerate(itertools.chain([c], points)):
            if slot.op.aligned_at(p):
                slot.hold_after = p
                break
            if i >= LOOKAHEAD:
                break

    def announce(self, epoch: int) -> None:
        """Take a checkpoint at `epoch` too. Safe only while nothing after `epoch` exists yet
        (the sources are paused at epoch+1): no instance can have handled input after it."""
        if epoch not in self.extra:
            self.extra.append(epoch)
            self.extra.sort()
        for slot in self.slots:
            c = self.due.get(slot.index)
            if c is None or epoch < c:
                self._schedule(slot, epoch - 1)

    def before_notify(self, slot: "OperatorSlot", epoch: int) -> None:
        """A notification after the owed checkpoint is about to fire: snapshot first."""
        c = self.due.get(slot.index)
        if c is None or c >= epoch:
            return
        while c is not None and c < epoch:
            self._emit(slot, c, slot.op.snapshot(c))
            c = self.due.get(slot.index)
        self._release(slot)

    def poll(self) -> bool:
        """Snapshot every instance whose frontier has passed its owed checkpoint; returns
        whether it took any (several, when its frontier jumped over several checkpoint epochs).
        Each is taken for its own epoch: operators that keep later epochs apart leave out what
        follows it."""
        worker = self.worker
        took = False
        for slot in self.slots:
            c = self.due.get(slot.index)
            if c is None or slot in worker.failed or slot.pending:
                continue
            limit = worker.tracker.frontier(slot.index) - 1
            if slot.notify_heap:
                limit = min(limit, slot.notify_heap[0] - 1)
            if limit == DONE or c > limit:
                continue  # not passed yet; or finished: its state will not change again
            while c is not None and c <= limit:
                self._emit(slot, c, slot.op.snapshot(c))
                c = self.due.get(slot.index)
            took = True
            self._release(slot)
        return took

    def _emit(self, slot: "OperatorSlot", c: int, state: Any) -> None:
        notify = sorted(e for e in slot.notify_set if e > c)
        self.on_snapshot(Snapshot(c, slot.name, slot.ctx.instance, state, notify))
        self._schedule(slot, c)

    def _release(self, slot: "OperatorSlot") -> None:
        """Input held back for the snapshot just taken goes back to the front of its queue."""
        if not slot.deferred:
            return
        keep, back = [], []
        for item in slot.deferred:
            (back if item[1] <= slot.hold_after else keep).append(item)
        slot.deferred = keep
        for port, epoch, batch in reversed(back):
            slot.queues[port].appendleft((epoch, batch))
        slot.wake()
