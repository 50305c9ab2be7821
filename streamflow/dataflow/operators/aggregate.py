"""Aggregate: group by key within an epoch or a tumbling window of epochs.

count, sum, mean, min, max, top-k and distinct count per key; results are emitted once, at the
notification for the window's last epoch, when no record of the window can arrive any more.

Results do not depend on the order records arrive in (docs/records.md):
- NaN values are skipped by sum, mean, min, max and top-k (as SQL skips NULL); a group with no
  other value reports NaN for sum, mean, min and max and [] for top-k. count counts every record;
  distinct counts all NaNs as one value.
- sum and mean add exactly (integers exactly, floats with math.fsum), so the result is the same
  whatever the order; -inf + inf is NaN.
- Keys group by equality; every NaN key is one group (named NaN) and -0.0 is named 0.0 (so is a
  min or max of -0.0). Equal keys or values of different types (1, 1.0, True) are one group, or
  one min, named by the first one seen: the one result that depends on arrival order.
"""
from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Callable
from typing import Any

from streamflow.dataflow.operator import Batch, Operator, Output
from streamflow.records.keys import canonical, needs_canonical
from streamflow.recovery.state import Keyed

AGGREGATES = ("count", "sum", "mean", "min", "max", "topk", "distinct")
NAN = float("nan")
CANONICAL_TYPES = frozenset({float, tuple, frozenset})  # key types that may hold NaN or -0.0


def key_value(key: Any, value: Any) -> tuple[Any, Any]:
    """The default result record: (key, value)."""
    return (key, value)


key_value.carried = True  # type: ignore[attr-defined]  # builds records from carried values


def is_nan(v: Any) -> bool:
    return v != v


def exact_sum(values: list[Any]) -> Any:
    """The sum of `values` independent of their order: integers exactly, floats correctly rounded."""
    types = set(map(type, values))
    if types <= {int, bool}:
        return sum(values)
    if any(math.isinf(v) for v in values):
        return sum(values)  # inf + finite is inf and inf + -inf is nan in any order
    return math.fsum(values)


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
        self.emits_carried = bool(getattr(emit, "carried", False))
        self.state: dict[int, Any] = {}
        self._fold = getattr(self, f"_fold_{agg}")

    def on_batch(self, epoch: int, batch: Batch, output: Output) -> None:
        w = epoch // self.window
        acc = self.state.get(w)
        if acc is None:
            acc = self.state[w] = Counter() if self.agg == "count" else {}
            self.ctx.notify_at((w + 1) * self.window - 1)
        self._fold(acc, batch)

    # folding: one pass per batch; NaN values are skipped where the docstring says ----------------
    def _fold_count(self, acc: Counter, batch: Batch) -> None:
        acc.update(map(self.key, batch))

    def _fold_sum(self, acc: dict, batch: Batch) -> None:
        key, value = self.key, self.value
        for r in batch:
            v = value(r)
            values = acc.get(k := key(r))
            if values is None:
                values = acc[k] = []
            if v == v:
                values.append(v)

    _fold_mean = _fold_sum

    def _fold_min(self, acc: dict, batch: Batch) -> None:
        key, value = self.key, self.value
        for r in batch:
            k, v = key(r), value(r)
            if v != v:
                acc.setdefault(k, NAN)
            elif k not in acc or v < acc[k] or acc[k] != acc[k]:
                acc[k] = v

    def _fold_max(self, acc: dict, batch: Batch) -> None:
        key, value = self.key, self.value
        for r in batch:
            k, v = key(r), value(r)
            if v != v:
                acc.setdefault(k, NAN)
            elif k not in acc or v > acc[k] or acc[k] != acc[k]:
                acc[k] = v

    def _fold_topk(self, acc: dict, batch: Batch) -> None:
        key, value, k_ = self.key, self.value, self.k
        for r in batch:
            heap = acc.setdefault(key(r), [])
            v = value(r)
            if v != v:
                continue
            if len(heap) < k_:
                heapq.heappush(heap, v)
            elif v > heap[0]:
                heapq.heapreplace(heap, v)

    def _fold_distinct(self, acc: dict, batch: Batch) -> None:
        key, value = self.key, self.value
        for r in batch:
            acc.setdefault(key(r), set()).add(value(r))

    # results -------------------------------------------------------------------------------------
    def _merge(self, a: Any, b: Any) -> Any:
        """Two accumulators of keys that are one group once canonical (NaN keys)."""
        agg = self.agg
        if agg == "count":
            return a + b
        if agg in ("sum", "mean"):
            return a + b
        if agg in ("min", "max"):
            if a != a:
                return b
            if b != b:
                return a
            return min(a, b) if agg == "min" else max(a, b)
        if agg == "topk":
            return heapq.nlargest(self.k, a + b)
        return a | b

    def _canonical_groups(self, acc: dict) -> dict:
        if CANONICAL_TYPES.isdisjoint(set(map(type, acc))) or not any(map(needs_canonical, acc)):
            return acc
        out: dict = {}
        for k, v in acc.items():
            c = canonical(k)
            out[c] = self._merge(out[c], v) if c in out else v
        return out

    def _result(self, acc: Any) -> Any:
        agg = self.agg
        if agg == "sum":
            return exact_sum(acc) if acc else NAN
        if agg == "mean":
            return exact_sum(acc) / len(acc) if acc else NAN
        if agg == "topk":
            return sorted(acc, reverse=True)
        if agg == "distinct":
            return len({canonical(v) if needs_canonical(v) else v for v in acc})
        if agg in ("min", "max") and type(acc) is float:
            return canonical(acc)  # -0.0 and 0.0 tie: name the result 0.0 whichever came first
        return acc

    def aligned_at(self, epoch: int) -> bool:
        return (epoch + 1) % self.window != 0  # at a window's end, later windows stay apart

    def snapshot(self, epoch: int) -> Any:
        """The windows open at `epoch`, per key (its input is partitioned by the same key):
        Keyed({key: {window: accumulator}}), accumulators (sets, heaps) as they are."""
        last = epoch // self.window
        per_key: dict[Any, dict[int, Any]] = {}
        for w, acc in self.state.items():
            if w <= last:
                for k, v in acc.items():
                    per_key.setdefault(k, {})[w] = v
        return Keyed(per_key)

    def restore(self, state: Any) -> None:
        self.state = {}
        for k, windows in state.per_key.items():
            for w, v in windows.items():
                acc = self.state.get(int(w))
                if acc is None:
                    acc = self.state[int(w)] = Counter() if self.agg == "count" else {}
                acc[k] = v

    def on_notify(self, epoch: int, output: Output) -> None:
        acc = self.state.pop(epoch // self.window, None)
        if not acc:
            return
        emit, result = self.emit, self._result
        output.give([emit(k, result(v)) for k, v in self._canonical_groups(acc).items()], epoch)
