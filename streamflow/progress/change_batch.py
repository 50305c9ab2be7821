"""Atomic batches of pointstamp count changes: the unit of progress exchanged between workers."""
from __future__ import annotations

from collections.abc import Iterable, Iterator


class ChangeBatch:
    """Accumulates (location, epoch) -> delta and compacts away zeros.

    A batch is applied atomically: a +1 for records produced travels in the same batch as the -1
    for what caused them, so a view built from whole batches is never optimistic.
    """

    __slots__ = ("deltas",)

    def __init__(self, deltas: dict[tuple[int, int], int] | None = None) -> None:
        self.deltas: dict[tuple[int, int], int] = deltas if deltas is not None else {}

    def update(self, location: int, epoch: int, delta: int) -> None:
        """Record `delta` occurrences of the pointstamp (location, epoch)."""
        key = (location, epoch)
        self.deltas[key] = self.deltas.get(key, 0) + delta

    def extend(self, changes: Iterable[tuple[int, int, int]]) -> None:
        """Record many (location, epoch, delta) changes."""
        deltas = self.deltas
        for location, epoch, delta in changes:
            key = (location, epoch)
            deltas[key] = deltas.get(key, 0) + delta

    def drain(self) -> list[tuple[int, int, int]]:
        """Take the non-zero changes out, leaving the batch empty."""
        items = [(loc, ep, d) for (loc, ep), d in self.deltas.items() if d]
        self.deltas = {}
        return items

    def __bool__(self) -> bool:
        return any(self.deltas.values())

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        return ((loc, ep, d) for (loc, ep), d in self.deltas.items() if d)

    def __repr__(self) -> str:
        return f"ChangeBatch({sorted(self)})"
