"""Epoch join: equi-join of two inputs on a key within an epoch or a tumbling window of epochs.

A symmetric hash join: each arriving record meets the other side's records of its window at
once and every match is emitted at max(left epoch, right epoch), so results and their epochs do
not depend on arrival order. Keys match by equality, and every NaN key matches every other (as
pandas does; docs/records.md). A notification at the window's last epoch frees its state and
emits the unmatched records of outer joins.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamflow.dataflow.operator import Batch, Operator, Output
from streamflow.records.keys import canonical
from streamflow.recovery.state import Keyed

CANONICAL_TYPES = (float, tuple, frozenset)

HOWS = ("inner", "left", "right", "outer")


def pair(left: Any, right: Any) -> tuple[Any, Any]:
    """The default join output: (left, right); None stands for the missing side of outer joins."""
    return (left, right)


pair.carried = True  # type: ignore[attr-defined]  # builds records from carried values


class _Side:
    """One input's records of one window: key -> list of [epoch, record, matched]."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: dict[Any, list[list[Any]]] = {}


class EpochJoin(Operator):
    """Joins input 0 (left) and input 1 (right) where left_key(l) == right_key(r)."""

    n_inputs = 2

    def __init__(self, left_key: Callable[[Any], Any], right_key: Callable[[Any], Any],
                 window: int = 1, how: str = "inner",
                 emit: Callable[[Any, Any], Any] = pair) -> None:
        if how not in HOWS:
            raise ValueError(f"join how={how!r}: expected one of {', '.join(HOWS)}")
        if window < 1:
            raise ValueError(f"join window={window}: must be at least 1 epoch")
        self.keys = (left_key, right_key)
        self.window = window
        self.how = how
        self.emit = emit
        self.emits_carried = bool(getattr(emit, "carried", False))
        self.state: dict[int, tuple[_Side, _Side]] = {}

    def on_input(self, port: int, epoch: int, batch: Batch, output: Output) -> None:
        w = epoch // self.window
        sides = self.state.get(w)
        if sides is None:
            sides = self.state[w] = (_Side(), _Side())
            self.ctx.notify_at((w + 1) * self.window - 1)
        mine, other = sides[port].rows, sides[1 - port].rows
        key_of = self.keys[port]
        emit = self.emit
        out: dict[int, list[Any]] = {}
        for record in batch:
            key = key_of(record)
            if type(key) in CANONICAL_TYPES:
                key = canonical(key)  # NaN keys match each other, as they group together
            row = [epoch, record, False]
            partners = other.get(key)
            if partners:
                row[2] = True
                for partner in partners:
                    partner[2] = True
                    result = emit(record, partner[1]) if port == 0 else emit(partner[1], record)
                    out.setdefault(max(epoch, partner[0]), []).append(result)
            mine.setdefault(key, []).append(row)
        for e, records in out.items():
            output.give(records, e)

    def aligned_at(self, epoch: int) -> bool:
        return (epoch + 1) % self.window != 0  # at a window's end, later windows stay apart

    def snapshot(self, epoch: int) -> Any:
        """The windows open at `epoch`, per key (both inputs are partitioned by it):
        Keyed({key: {window: [left rows, right rows]}}), rows [[epoch, record, matched]]."""
        last = epoch // self.window
        per_key: dict[Any, dict[int, list[Any]]] = {}
        for w, sides in self.state.items():
            if w <= last:
                for port, side in enumerate(sides):
                    for key, rows in side.rows.items():
                        per_key.setdefault(key, {}).setdefault(w, [[], []])[port] = rows
        return Keyed(per_key)

    def restore(self, state: Any) -> None:
        self.state = {}
        for key, windows in state.per_key.items():
            if type(key) in CANONICAL_TYPES:
                key = canonical(key)  # a NaN key comes back as a new NaN object
            for w, saved in windows.items():
                sides = self.state.get(int(w))
                if sides is None:
                    sides = self.state[int(w)] = (_Side(), _Side())
                for side, rows in zip(sides, saved):
                    if rows:
                        side.rows.setdefault(key, []).extend([list(e) for e in rows])

    def on_notify(self, epoch: int, output: Output) -> None:
        sides = self.state.pop(epoch // self.window, None)
        if sides is None:
            return
        unmatched: list[Any] = []
        if self.how in ("left", "outer"):
            unmatched += [self.emit(r, None) for rows in sides[0].rows.values() for _e, r, m in rows if not m]
        if self.how in ("right", "outer"):
            unmatched += [self.emit(None, r) for rows in sides[1].rows.values() for _e, r, m in rows if not m]
        output.give(unmatched, epoch)
