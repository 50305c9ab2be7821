"""In-process runtime throughput against bytewax 0.21.1 and a bare Python loop, in the same run.

(a) 2,000,000 small ints -> map(x*2) -> filter(even) -> count sink, batches of 1000 from the
    source (bytewax: TestingSource(batch_size=1000)), per-record user functions; next to it the
    bare loop: `for x in range(n)` calling the same two functions, no dataflow at all.
(a1) the same with batches of one record from the source (bytewax: batch_size=1). The epochs
    stay those of (a) (1000 records each), so the runtime may gather a source's records into
    buffers as timely does; (a1') gives every record its own epoch, which no buffer can
    gather: the per-batch path with its progress tracking, one batch per record.
(b) 1,000,000 (key, value, event_time) events, 100 string keys, +1 ms per event, 1-second
    tumbling windows aligned to the first event, count per key per window (100,000 results)
Also: progress-tracking overhead, epochs/s through a 5-operator chain with one record per epoch.
Usage: python tools/bench_runtime.py [--quick] [--no-bytewax] [--repeat N]
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import streamflow.operators as op  # noqa: E402
from streamflow import Dataflow, Operator  # noqa: E402
from tools.benchutil import best_of, run_bytewax, table  # noqa: E402

BATCH = 1000


def double(x: int) -> int:
    return x * 2


def even(x: int) -> bool:
    return x % 2 == 0


def flow_a(n: int, batch: int = BATCH, epoch_size: int = BATCH) -> tuple[Dataflow, list[int]]:
    """(a): `batch` records per source batch, `epoch_size` records per epoch."""
    flow = Dataflow("a")
    count = [0]

    def tally(epoch: int, batch: list) -> None:
        count[0] += len(batch)
    epoch_of = None if batch == epoch_size else (lambda x: x // epoch_size)
    s = op.source("inp", flow, range(n), batch_size=batch, epoch_of=epoch_of)
    op.sink("count", s.map(double).filter(even), tally)
    return flow, count


def pipeline_a(n: int, batch: int = BATCH, epoch_size: int = BATCH) -> int:
    flow, count = flow_a(n, batch, epoch_size)
    flow.run()
    return count[0]


def bare_a(n: int) -> int:
    """(a) without a dataflow: a plain loop making the same per-record calls."""
    count = 0
    for x in range(n):
        y = double(x)
        if even(y):
            count += 1
    return count


def events(n: int) -> list[tuple[str, int, datetime]]:
    """The same events bytewax gets: (key, value, event_time as an aware datetime)."""
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    keys = [f"key{i}" for i in range(100)]
    ms = timedelta(milliseconds=1)
    return [(keys[i % 100], i, t0 + i * ms) for i in range(n)]


def flow_b(data: list) -> tuple[Dataflow, list[int]]:
    """Event time -> epoch in the source (1-second epochs from the first event), count per key
    per epoch; epochs must not go back, which the source checks per record. Returns the flow
    and the cell its sink counts results in."""
    flow = Dataflow("b")
    t0, second = data[0][2], timedelta(seconds=1)
    results = [0]

    def tally(epoch: int, batch: list) -> None:
        results[0] += len(batch)
    s = op.source("inp", flow, data, batch_size=BATCH, epoch_of=lambda e: (e[2] - t0) // second)
    op.sink("out", s.count(key=lambda e: e[0]), tally)
    return flow, results


def pipeline_b(data: list) -> int:
    flow, results = flow_b(data)
    flow.run()
    return results[0]


class PerEpoch(Operator):
    """Asks for a notification at every epoch: the progress tracker must close each one."""

    def __init__(self) -> None:
        self.closed = 0

    def on_batch(self, epoch: int, batch: list, output) -> None:
        self.ctx.notify_at(epoch)

    def on_notify(self, epoch: int, output) -> None:
        self.closed += 1


def epochs_chain(n_epochs: int) -> int:
    """One record per epoch through 5 operators, the last closing every epoch."""
    flow = Dataflow("chain")
    s = op.source("inp", flow, range(n_epochs), batch_size=1)
    for _ in range(4):
        s = s.map(lambda x: x)
    last = PerEpoch()
    flow.add("close", "close", lambda: last, [s], 0)
    flow.run()
    return last.closed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x fewer records")
    parser.add_argument("--no-bytewax", action="store_true", help="skip the bytewax runs")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument("--metrics", action="store_true",
                        help="also (a) and (b) with a worker's Prometheus metrics on against off")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    n_a, n_1, n_b, n_e = 2_000_000 // scale, 1_000_000 // scale, 1_000_000 // scale, 100_000 // scale

    # (a) and the bare loop alternate (3x --repeat rounds, either one first in turn), so that both
    # see the same machine: on a shared 2-core VM one run's speed moves by up to 2x within seconds
    t_a, t_bare = float("inf"), float("inf")
    for round_ in range(3 * args.repeat):
        for which in ((0, 1) if round_ % 2 == 0 else (1, 0)):
            if which == 0:
                t, out_a = best_of(lambda: pipeline_a(n_a), 1)
                t_a = min(t_a, t)
            else:
                t, out_bare = best_of(lambda: bare_a(n_a), 1)
                t_bare = min(t_bare, t)
    t_1, out_1 = best_of(lambda: pipeline_a(n_1, batch=1), args.repeat)
    n_1e = n_1 // 4
    t_1e, out_1e = best_of(lambda: pipeline_a(n_1e, batch=1, epoch_size=1), args.repeat)
    data = events(n_b)
    t_b, out_b = best_of(lambda: pipeline_b(data), args.repeat)
    t_e, closed = best_of(lambda: epochs_chain(n_e), args.repeat)
    assert out_a == out_bare == n_a and out_1 == n_1 and out_1e == n_1e, (out_a, out_bare, out_1, out_1e)
    assert out_b == n_b // 10 and closed == n_e, (out_b, closed)
    ours_a, bare, ours_1, ours_1e, ours_b = n_a / t_a, n_a / t_bare, n_1 / t_1, n_1e / t_1e, n_b / t_b

    rows = [["(a) map/filter/count, batches of 1000", f"{n_a:,}", f"{ours_a / 1e6:.2f} M/s"],
            ["(a1) the same, batches of 1 record", f"{n_1:,}", f"{ours_1 / 1e6:.2f} M/s"],
            ["(a1') batches of 1 record, 1 record per epoch", f"{n_1e:,}", f"{ours_1e / 1e6:.2f} M/s"],
            ["(b) tumbling count per key", f"{n_b:,}", f"{ours_b / 1e6:.2f} M/s"]]
    header = ["pipeline", "records", "streamflow"]
    if not args.no_bytewax:
        bw_a = run_bytewax(["a", str(n_a), str(BATCH)], args.repeat)
        bw_1 = run_bytewax(["a", str(n_1), "1"], args.repeat)
        bw_b = run_bytewax(["b", str(n_b), str(BATCH)], args.repeat)
        assert bw_b["outputs"] == out_b, (bw_b["outputs"], out_b)
        header += ["bytewax 0.21.1", "ratio"]
        for row, ours, bw in ((rows[0], ours_a, bw_a), (rows[1], ours_1, bw_1), (rows[2], ours_1e, bw_1),
                              (rows[3], ours_b, bw_b)):
            row += [f"{bw['records_per_s'] / 1e6:.2f} M/s", f"{ours / bw['records_per_s']:.2f}x"]
    print(table(rows, header))
    print(f"bare loop (a): {bare:,.0f} records/s; streamflow (a) is {ours_a / bare:.2f}x of it")
    print(f"records/s a: {ours_a:,.0f}")
    print(f"records/s a1 (batches of one record): {ours_1:,.0f}")
    print(f"records/s a1' (batches of one record, one epoch each): {ours_1e:,.0f}")
    print(f"records/s b: {ours_b:,.0f}")
    if not args.no_bytewax:
        print(f"ratio a: {ours_a / bw_a['records_per_s']:.2f}")
        print(f"ratio a1: {ours_1 / bw_1['records_per_s']:.2f}")
        print(f"ratio b: {ours_b / bw_b['records_per_s']:.2f}")
    print(f"progress: {n_e / t_e:,.0f} epochs/s through a 5-operator chain, one record per epoch "
          f"({t_e / n_e * 1e6:.1f} us per epoch)")
    if args.metrics:  # issue 16: the cost of metrics (tools/bench_metrics.py says what "on" runs)
        from tools.bench_metrics import metrics_overhead
        rows = metrics_overhead({"(a)": lambda: flow_a(n_a), "(b)": lambda: flow_b(data)},
                                {"(a)": n_a, "(b)": n_b}, max(5, args.repeat))
        print(table(rows, ["pipeline", "metrics off", "metrics on", "on/off"]))


if __name__ == "__main__":
    main()
