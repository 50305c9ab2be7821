"""Aggregate: group by key within an epoch or a tumbling window of epochs.

count, sum, mean, min, max, top-k and distinct count per key; results are emitted once, at the notification for
the window's last epoch, when no record of the window can arrive any more.
"""
from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable
from typing import Any

from streamflow.dataflow.operator import Batch, Operator, Output

AGGREGATES = ("count", "sum", "mean", "min", "max", "topk", "distinct")


def key_value(key: Any, value: Any) -> tuple[Any, Any]:
    """The default result record: (key, value)."""
    return (key, value)


class Aggregate(Operator):
    """Per window of `window` epochs and per key(record): agg over value(record)."""

    def __init__(self, key: Callable[[Any], Any], agg: str = "count",
                 value: Callable[[Any], Any] | None = None, window: int = 1, k: int = 3,
                 emit: Callable[[Any, Any], Any] = key_value) -> None:
        if agg not in AGGREGATES:
            raise ValueError(f"aggregate agg={agg!r}: expected one of {', '.join(AGGREGATES)}")
        if agg != "count" and value is None:
            raise ValueError(f"aggregate agg={agg!r} needs a value function")
        if window < 1:
            raise ValueError(f"aggregate window={window}: must be at least 1 epoch")
        self.key, self.value, self.agg, self.window, self.k, self.emit = key, value, agg, window, k, emit
        self.state: dict[int, Any] = {}
        self._fold = getattr(self, f"_fold_{agg}")

    def on_batch(self, epoch: int, batch: Batch, output: Output) -> None:
        w = epoch // self.window
        acc = self.state.get(w)
        if acc is None:
            acc = self.state[w] = Counter() if self.agg == "count" else {}
            self.ctx.notify_at((w + 1) * self.window - 1)
        self._fold(acc, batch)

    def _fold_count(self, acc: Counter, batch: Batch) -> None:
        acc.update(map(self.key, batch))

    def _fold_sum(self, acc: dict, batch: Batch) -> None:
        key, value = self.key, self.value
        for r in batch:
            k = key(r)
            acc[k] = acc.get(k, 0) + value(r)

    def _fold_mean(self, acc: dict, batch: Batch) -> None:
        key, value = self.key, self.value
        for r in batch:
            k = key(r)
            s = acc.get(k)
            if s is None:
                acc[k] = [value(r), 1]
            else:
                s[0] += value(r)
                s[1] += 1

    def _fold_min(self, acc: dict, batch: Batch) -> None:
        key, value = self.key, self.value
        for r in batch:
            k, v = key(r), value(r)
            if k not in acc or v < acc[k]:
                acc[k] = v

    def _fold_max(self, acc: dict, batch: Batch) -> None:
        key, value = self.key, self.value
        for r in batch:
            k, v = key(r), value(r)
            if k not in acc or v > acc[k]:
                acc[k] = v

    def _fold_topk(self, acc: dict, batch: Batch) -> None:
        key, value, k_ = self.key, self.value, self.k
        for r in batch:
            heap = acc.setdefault(key(r), [])
            v = value(r)
            if len(heap) < k_:
                heapq.heappush(heap, v)
            elif v > heap[0]:
                heapq.heapreplace(heap, v)

    def _fold_distinct(self, acc: dict, batch: Batch) -> None:
        key, value = self.key, self.value
        for r in batch:
            acc.setdefault(key(r), set()).add(value(r))

    def on_notify(self, epoch: int, output: Output) -> None:
        acc = self.state.pop(epoch // self.window, None)
        if not acc:
            return
        emit = self.emit
        if self.agg == "mean":
            results = [emit(k, s / n) for k, (s, n) in acc.items()]
        elif self.agg == "topk":
            results = [emit(k, sorted(h, reverse=True)) for k, h in acc.items()]
        elif self.agg == "distinct":
            results = [emit(k, len(v)) for k, v in acc.items()]
        else:
            results = [emit(k, v) for k, v in acc.items()]
        output.give(results, epoch)
