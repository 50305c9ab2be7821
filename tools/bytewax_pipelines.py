"""Pipelines (a) and (b) of tools/bench_runtime.py written for bytewax 0.21.1.

Runs inside a throw-away venv that has bytewax (streamflow never depends on it); prints one
JSON object with records/s. Usage: python bytewax_pipelines.py a|b N BATCH [--workers W]
"""
from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timedelta, timezone

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.testing import TestingSource, cluster_main, run_main

COUNT = [0]


class _CountPartition(StatelessSinkPartition):
    def write_batch(self, items: list) -> None:
        COUNT[0] += len(items)


class CountSink(DynamicSink):
    def build(self, step_id: str, worker_index: int, worker_count: int) -> _CountPartition:
        return _CountPartition()


class _RangePartition(StatefulSourcePartition):
    def __init__(self, lo: int, hi: int, batch: int) -> None:
        self.it, self.hi, self.batch = lo, hi, batch

    def next_batch(self) -> list[int]:
        if self.it >= self.hi:
            raise StopIteration()
        lo, self.it = self.it, min(self.it + self.batch, self.hi)
        return list(range(lo, self.it))

    def snapshot(self) -> None:
        return None


class SplitRange(FixedPartitionedSource):
    """range(n) as `parts` partitions (a 2-partition source for the two-process run)."""

    def __init__(self, n: int, batch: int, parts: int) -> None:
        self.n, self.batch, self.parts = n, batch, parts

    def list_parts(self) -> list[str]:
        return [str(i) for i in range(self.parts)]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _RangePartition:
        i, size = int(for_part), self.n // self.parts
        return _RangePartition(i * size, self.n if i == self.parts - 1 else (i + 1) * size, self.batch)


def events(n: int) -> list[tuple[str, int, datetime]]:
    """(key, value, event_time): 100 string keys, event time +1 ms per event."""
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    keys = [f"key{i}" for i in range(100)]
    ms = timedelta(milliseconds=1)
    return [(keys[i % 100], i, t0 + i * ms) for i in range(n)]


def pipeline_a(n: int, batch: int, parts: int = 1) -> Dataflow:
    flow = Dataflow("a")
    source = TestingSource(range(n), batch_size=batch) if parts == 1 else SplitRange(n, batch, parts)
    s = op.input("inp", flow, source)
    s = op.filter("even", op.map("double", s, lambda x: x * 2), lambda x: x % 2 == 0)
    op.output("count", s, CountSink())
    return flow


def pipeline_b(data: list, batch: int) -> Dataflow:
    from bytewax.operators.windowing import EventClock, TumblingWindower, count_window
    flow = Dataflow("b")
    s = op.input("inp", flow, TestingSource(data, batch_size=batch))
    clock = EventClock(lambda e: e[2], wait_for_system_duration=timedelta(0))
    windower = TumblingWindower(length=timedelta(seconds=1), align_to=data[0][2])
    counts = count_window("count", s, clock, windower, lambda e: e[0])
    op.output("out", counts.down, CountSink())
    return flow


def main() -> None:
    which, n, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    cluster = sys.argv[sys.argv.index("--cluster") + 1:] if "--cluster" in sys.argv else None
    if which == "a":
        flow = pipeline_a(n, batch, parts=len(cluster[0].split(";")) if cluster else 1)
    else:
        flow = pipeline_b(events(n), batch)
    t = time.perf_counter()
    if cluster:
        cluster_main(flow, cluster[0].split(";"), int(cluster[1]), worker_count_per_proc=1)
    else:
        run_main(flow)
    dt = time.perf_counter() - t
    print(json.dumps({"pipeline": which, "records": n, "seconds": dt, "records_per_s": n / dt,
                      "outputs": COUNT[0]}))


if __name__ == "__main__":
    main()
