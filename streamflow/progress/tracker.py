"""The progress tracker: pointstamp occurrence counts and the frontier at every operator."""
from __future__ import annotations

from collections.abc import Iterable

from streamflow.progress.antichain import DONE, Frontier, MutableAntichain
from streamflow.progress.topology import Topology


class ProgressTracker:
    """Keeps counts per location and answers "has every input of `op` passed epoch e?".

    Changes arrive as atomic batches of (location, epoch, delta); an operator's frontier is the
    least epoch with a positive count among the locations that can reach its inputs.
    """

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.antichains = [MutableAntichain() for _ in topology.locations]
        self._op_frontier: list[Frontier] = [DONE] * topology.n_ops
        self._op_dirty = [True] * topology.n_ops
        self._reached_by = topology.ops_reached_by
        self._upstream = topology.upstream_of_op
        self.batches_applied = 0

    def apply(self, changes: Iterable[tuple[int, int, int]]) -> None:
        """Apply one atomic batch of (location, epoch, delta) changes."""
        antichains = self.antichains
        reached_by = self._reached_by
        dirty = self._op_dirty
        for location, epoch, delta in changes:
            chain = antichains[location]
            before = chain.frontier
            chain.update(epoch, delta)
            if chain.frontier != before:
                for op in reached_by[location]:
                    dirty[op] = True
        self.batches_applied += 1

    def frontier(self, op: int) -> Frontier:
        """The least epoch that may still arrive at any input of `op` (DONE when none can)."""
        if self._op_dirty[op]:
            self._op_dirty[op] = False
            antichains = self.antichains
            self._op_frontier[op] = min((antichains[l].frontier for l in self._upstream[op]),
                                        default=DONE)
        return self._op_frontier[op]

    def frontier_of(self, locations: Iterable[int]) -> Frontier:
        """The least epoch with a positive count among `locations`."""
        return min((self.antichains[l].frontier for l in locations), default=DONE)

    def is_complete(self) -> bool:
        """True when no pointstamp holds anywhere: the dataflow has finished."""
        return all(chain.frontier == DONE for chain in self.antichains)

    def counts(self) -> dict[int, dict[int, int]]:
        """Non-zero counts per location (for diagnostics and tests)."""
        return {loc: dict(chain.counts) for loc, chain in enumerate(self.antichains) if chain.counts}
