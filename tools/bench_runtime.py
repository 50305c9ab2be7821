"""In-process runtime throughput against bytewax 0.21.1, measured in the same run.

(a) 2,000,000 small ints -> map(x*2) -> filter(even) -> count sink
(b) 1,000,000 (key, value, event_time) events, 100 string keys, +1 ms per event, 1-second
    tumbling windows aligned to the first event, count per key per window (100,000 results)
Both sides: batches of 1000 from the source (bytewax: TestingSource(batch_size=1000)), per-record
user functions. Also: progress-tracking overhead, epochs/s through a 5-operator chain with one
record per epoch. Usage: python tools/bench_runtime.py [--quick] [--no-bytewax] [--repeat N]
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


def flow_a(n: int) -> tuple[Dataflow, list[int]]:
    flow = Dataflow("a")
    count = [0]

    def tally(epoch: int, batch: list) -> None:
        count[0] += len(batch)
    s = op.source("inp", flow, range(n), batch_size=BATCH)
    op.sink("count", s.map(lambda x: x * 2).filter(lambda x: x % 2 == 0), tally)
    return flow, count


def pipeline_a(n: int) -> int:
    flow, count = flow_a(n)
    flow.run()
    return count[0]


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
    n_a, n_b, n_e = 2_000_000 // scale, 1_000_000 // scale, 100_000 // scale

    t_a, out_a = best_of(lambda: pipeline_a(n_a), args.repeat)
    data = events(n_b)
    t_b, out_b = best_of(lambda: pipeline_b(data), args.repeat)
    t_e, closed = best_of(lambda: epochs_chain(n_e), args.repeat)
    assert out_a == n_a and out_b == n_b // 10 and closed == n_e, (out_a, out_b, closed)
    ours_a, ours_b = n_a / t_a, n_b / t_b

    rows = [["(a) map/filter/count", f"{n_a:,}", f"{ours_a / 1e6:.2f} M/s"],
            ["(b) tumbling count per key", f"{n_b:,}", f"{ours_b / 1e6:.2f} M/s"]]
    header = ["pipeline", "records", "streamflow"]
    if not args.no_bytewax:
        bw_a = run_bytewax(["a", str(n_a), str(BATCH)], args.repeat)
        bw_b = run_bytewax(["b", str(n_b), str(BATCH)], args.repeat)
        assert bw_b["outputs"] == out_b, (bw_b["outputs"], out_b)
        header += ["bytewax 0.21.1", "ratio"]
        rows[0] += [f"{bw_a['records_per_s'] / 1e6:.2f} M/s", f"{ours_a / bw_a['records_per_s']:.2f}x"]
        rows[1] += [f"{bw_b['records_per_s'] / 1e6:.2f} M/s", f"{ours_b / bw_b['records_per_s']:.2f}x"]
    print(table(rows, header))
    print(f"records/s a: {ours_a:,.0f}")
    print(f"records/s b: {ours_b:,.0f}")
    if not args.no_bytewax:
        print(f"ratio a: {ours_a / bw_a['records_per_s']:.2f}")
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
