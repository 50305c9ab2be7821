"""Operator chaining: a run of per-record transforms on one worker handled in one pass per batch.

Flink chains operators joined by forward edges into one task. Here a chain is a run of maps,
filters and flat_maps on one worker where each member's only output feeds the next by a
forward edge that is the next one's only input. The head's handler composes the members' lazy
transforms (`map(f, filter(g, batch))`), so a record crosses the chain in C-level iterator calls
with no intermediate list, and the result leaves from the last member's output. Where a
member's output is checked against the record type system (plan runs), its batch is built and
checked there, as `give` would have, so a plan fails the same way whether chained or not.

Why it is safe (the progress protocol of streamflow/communication/transport.py is unchanged):
- A chained edge never carries a batch, so its pointstamp count stays 0. The head consumes the
  batch (-1 at its input) and the tail emits the result (+1 on its outputs) in the same
  scheduling step, so the same atomic progress batch goes out as without the chain, once the
  intermediate +1/-1 pairs (which would have cancelled within the step or later) are left out.
  No frontier can run ahead: every pointstamp the chain's input held is still held by the
  head's queue until the result is counted downstream.
- Members are stateless, hold no capabilities and ask for no notifications, so a checkpoint
  that snapshots one member before another sees the same (empty) state either way.
- Every member keeps its own queue and handler for input that reaches it another way (an
  upstream instance on another worker forwarding to it); only the local edge is bypassed.

Members' counters stay exact: a chain holds at most one member that changes the number of
records (a filter or flat_map), so each member's input and output counts are the batch's or the
result's length. A chain's busy time is booked to its head.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from streamflow.dataflow.operator import Batch, Operator, Output
from streamflow.errors import OperatorError, StreamflowError

if TYPE_CHECKING:  # pragma: no cover
    from streamflow.dataflow.worker import OperatorSlot, Worker


def _chainable(slot: "OperatorSlot") -> bool:
    op = slot.op
    return callable(getattr(op, "transform", None)) and slot.spec.n_inputs == 1 \
        and slot.spec.n_outputs == 1 and type(op).on_input is Operator.on_input


def _next(worker: "Worker", slot: "OperatorSlot") -> "OperatorSlot | None":
    """The member after `slot`, if its output may be chained into the next transform."""
    graph = worker.graph
    out = [e for e in graph.edges if e.src == slot.name]
    if len(out) != 1 or out[0].partition != "forward":
        return None
    dst = graph.index(out[0].dst)
    nxt = worker.slots.get(dst)
    if nxt is None or not _chainable(nxt) or sum(1 for e in graph.edges if e.dst == nxt.name) != 1:
        return None
    return nxt


def chains(worker: "Worker") -> list[list["OperatorSlot"]]:
    """Maximal chains of two or more members on this worker, each with at most one member that
    changes the number of records."""
    taken: set[int] = set()
    found = []
    for slot in worker.ordered:
        if slot.index in taken or not _chainable(slot):
            continue
        members = [slot]
        changers = 0 if slot.op.keeps_count else 1
        while (nxt := _next(worker, members[-1])) is not None and nxt.index not in taken:
            changes = 0 if nxt.op.keeps_count else 1
            if changers + changes > 1:
                break
            changers += changes
            members.append(nxt)
        if len(members) > 1:
            taken.update(m.index for m in members)
            found.append(members)
    return found


def install(worker: "Worker") -> None:
    """Give the head of every chain on `worker` the chain's handler."""
    for members in chains(worker):
        members[0].handlers[0] = ChainHandler(members)


class ChainHandler:
    """The head's handler: every member's transform in one pass, emitted from the tail."""

    def __init__(self, members: list["OperatorSlot"]) -> None:
        self.members = members
        # stages end where a member's output is checked against the record type system (plan
        # runs): that intermediate batch is built and checked as `give` would have checked it
        self.stages: list[tuple[list[Callable[[Any], Any]], Output | None]] = []
        transforms: list[Callable[[Any], Any]] = []
        for m in members:
            transforms.append(m.op.transform)
            if m.output.check and m is not members[-1]:
                self.stages.append((transforms, m.output))
                transforms = []
        self.stages.append((transforms, None))
        self.tail: Output = members[-1].output
        changer = next((i for i, m in enumerate(members) if not m.op.keeps_count), len(members))
        # (stats, input is the result's length, output is the result's length) per member
        self.counts = [(m.stats, i > changer, i >= changer) for i, m in enumerate(members)]
        self.last = len(members) - 1

    def __call__(self, epoch: int, batch: Batch, output: Output) -> None:
        records = batch
        try:
            for transforms, checked in self.stages:
                for transform in transforms:
                    records = transform(records)
                if checked is not None:
                    records = list(records)
                    checked.check_records(records, epoch)
            result = list(records)
        except StreamflowError:
            raise
        except Exception as exc:
            raise OperatorError(f"{self._culprit(exc)} failed at epoch {epoch}: {exc!r}") from exc
        n_in, n_out = len(batch), len(result)
        for i, (stats, in_is_out, out_is_out) in enumerate(self.counts):
            if i:  # the worker counted the head's input
                n = n_out if in_is_out else n_in
                if n:
                    stats.batches += 1
                    stats.records += n
            if i != self.last:  # the tail's output counts what it emits
                stats.records_out += n_out if out_is_out else n_in
        tail = self.tail
        tail.epoch = epoch
        try:
            tail.give(result)
        finally:
            tail.epoch = None

    def _culprit(self, exc: BaseException) -> str:
        """Which member raised: the first frame of a member's own function in the traceback
        (the iterators between them are C code), else the whole chain."""
        codes = {}
        for m in self.members:
            fn = getattr(m.op, "fn", None) or getattr(m.op, "predicate", None)
            code = getattr(fn, "__code__", None)
            if code is not None:
                codes.setdefault(code, []).append(m.name)
        tb = exc.__traceback__
        while tb is not None:
            names = codes.get(tb.tb_frame.f_code)
            if names is not None and len(names) == 1:
                return f"operator {names[0]!r}"
            tb = tb.tb_next
        return "chained operators " + " -> ".join(repr(m.name) for m in self.members)
