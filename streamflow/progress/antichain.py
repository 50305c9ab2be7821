"""Frontiers over epochs.

Epochs are totally ordered, so every antichain has at most one element: a frontier is either
one epoch (the least that may still appear) or empty, which we write as DONE (+infinity) so that
"frontier > e" reads "epoch e has passed".
"""
from __future__ import annotations

DONE: float = float("inf")
"""The empty frontier: no epoch can appear any more."""

Frontier = int | float


class MutableAntichain:
    """A multiset of epochs with signed counts; its frontier is the least epoch with positive count.

    Counts may go transiently negative when a consumer's -1 is seen before the producer's +1
    (distributed progress); such entries never hold the frontier back, as in timely.
    """

    __slots__ = ("counts", "_frontier", "_dirty")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self._frontier: Frontier = DONE
        self._dirty = False

    def update(self, epoch: int, delta: int) -> None:
        """Add `delta` occurrences of `epoch`."""
        counts = self.counts
        total = counts.get(epoch, 0) + delta
        if total:
            counts[epoch] = total
        else:
            counts.pop(epoch, None)
        if total > 0 and total - delta <= 0:
            if epoch < self._frontier:
                self._frontier = epoch
        elif total <= 0 < total - delta and epoch == self._frontier:
            self._dirty = True

    @property
    def frontier(self) -> Frontier:
        """The least epoch with a positive count, or DONE."""
        if self._dirty:
            self._dirty = False
            positive = [e for e, c in self.counts.items() if c > 0]
            self._frontier = min(positive) if positive else DONE
        return self._frontier

    def is_empty(self) -> bool:
        """No count at all, positive or negative."""
        return not self.counts

    def __repr__(self) -> str:
        return f"MutableAntichain({dict(sorted(self.counts.items()))})"
