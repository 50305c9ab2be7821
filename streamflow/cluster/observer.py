"""The coordinator's own view of progress, built from the batches every worker copies to it.

It says how far the run has got (the last epoch every operator has passed) and measures epoch
latency: from the moment the sources' frontier passes an epoch to the moment the sinks' does,
both seen on the coordinator's clock.
"""
from __future__ import annotations

import bisect
import time
from collections.abc import Iterable

from streamflow.dataflow.graph import Graph
from streamflow.dataflow.worker import Placement, Restored, initial_changes
from streamflow.progress import DONE, ProgressTracker, Topology


class ProgressObserver:
    """A progress tracker fed with every worker's batches, plus epoch timing."""

    def __init__(self, graph: Graph, placement: Placement, start_epoch: int = 0,
                 restored: Restored | None = None, earlier: "ProgressObserver | None" = None) -> None:
        """`start_epoch` and `restored`: a generation resuming after a checkpoint (the same
        initial view its workers start from); `earlier`: the previous generation's observer,
        whose epoch latencies the run keeps."""
        self.graph = graph
        self.topology = Topology([op.n_outputs for op in graph.operators],
                                 [op.n_inputs for op in graph.operators], graph.port_edges())
        self.tracker = ProgressTracker(self.topology)
        self.tracker.apply(initial_changes(graph, self.topology, placement, start_epoch, restored))
        self.source_locs = [self.topology.output_location[(i, p)]
                            for i, op in enumerate(graph.operators) if op.n_inputs == 0
                            for p in range(op.n_outputs)]
        self.sinks = [i for i, op in enumerate(graph.operators) if op.n_outputs == 0] or \
            [i for i in range(len(graph.operators))]
        self.start_epoch = start_epoch
        self._source_frontier = start_epoch
        self._sink_frontier = start_epoch
        self._closed_at: list[tuple[float, float]] = []  # (source frontier reached, time)
        self.epoch_latency_s: list[float] = earlier.epoch_latency_s if earlier else []
        self.batches = earlier.batches if earlier else 0
        self.sink_moved_at: float | None = None  # when the sinks last completed an epoch

    def apply(self, changes: Iterable[tuple[int, int, int]], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.tracker.apply(changes)
        self.batches += 1
        src = self.tracker.frontier_of(self.source_locs)
        if src > self._source_frontier:
            self._source_frontier = src
            self._closed_at.append((src, now))
        sink = min(self.tracker.frontier(i) for i in self.sinks)
        if sink > self._sink_frontier:
            self._sink_frontier = sink
            self.sink_moved_at = now
            # the newest completed epoch (sink - 1) closed when the sources' frontier first
            # passed it; at the very end, when the sources closed
            keys = [f for f, _t in self._closed_at]
            i = bisect.bisect_right(keys, sink - 1) if sink != DONE else len(keys) - 1
            if 0 <= i < len(keys):
                self.epoch_latency_s.append(now - self._closed_at[i][1])

    def sources_reached(self) -> int:
        """The highest finite frontier the sources have reached (the last epoch they emitted
        at, once they are done)."""
        finite = [f for f, _t in self._closed_at if f != DONE]
        return int(max(finite, default=self.start_epoch))

    def frontier(self) -> float:
        """The least epoch some operator may still see (inf once the run is complete)."""
        return min((self.tracker.frontier(i) for i in range(len(self.graph.operators))), default=DONE)

    def last_complete_epoch(self) -> int | None:
        """The last epoch the sinks have passed while the run is incomplete (None before the
        first; None after completion too: then every epoch is complete)."""
        f = self._sink_frontier
        return int(f) - 1 if f != DONE and f > 0 else None

    def complete(self) -> bool:
        return self.tracker.is_complete()
