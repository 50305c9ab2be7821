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
from bytewax.testing import TestingSource, run_main

COUNT = [0]


class _CountPartition(StatelessSinkPartition):
    def write_batch(self, items: list) -> None:
        COUNT[0] += len(items)


class CountSink(DynamicSink):
    def build(self, step_id: str, worker_index: int, worker_count: int) -> _CountPartition:
        return _CountPartition()


def events(n: int) -> list[tuple[str, int, datetime]]:
    """(key, value, event_time): 100 string keys, event time +1 ms per event."""
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    keys = [f"key{i}" for i in range(100)]
    ms = timedelta(milliseconds=1)
    return [(keys[i % 100], i, t0 + i * ms) for i in range(n)]


def pipeline_a(n: int, batch: int) -> Dataflow:
    flow = Dataflow("a")
    s = op.input("inp", flow, TestingSource(range(n), batch_size=batch))
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
    if which == "a":
        flow = pipeline_a(n, batch)
    else:
        flow = pipeline_b(events(n), batch)
    t = time.perf_counter()
    run_main(flow)
    dt = time.perf_counter() - t
    print(json.dumps({"pipeline": which, "records": n, "seconds": dt, "records_per_s": n / dt,
                      "outputs": COUNT[0]}))


if __name__ == "__main__":
    main()
