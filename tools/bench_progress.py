"""Epoch-close to notification latency across processes.

A source on worker w0 closes one epoch every `--period-ms`; a map on w1 forwards its record; an
operator on w2, two processes downstream, asks for a notification at every epoch. Prints the
median and p99 of (notification time on w2) - (epoch closed on w0), both read from the
system-wide monotonic clock. Usage: python tools/bench_progress.py [--epochs N] [--period-ms P]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from streamflow.cluster.localcluster import LocalCluster  # noqa: E402


def plan(epochs: int, period_ms: float, folder: Path) -> dict:
    return {"version": 1, "name": "progress-latency",
            "workers": [{"name": w, "tier": "edge"} for w in ("w0", "w1", "w2")],
            "sources": [{"name": "ticks", "kind": "python", "worker": "w0",
                         "params": {"class": "tools.bench_ops:TickSource",
                                    "args": {"epochs": epochs, "period_ms": period_ms,
                                             "log": str(folder / "closed.json")}}}],
            "operators": [{"name": "relay", "kind": "map", "params": {"fn": {"expr": "r"}},
                           "inputs": [{"from": "ticks"}], "placement": [{"worker": "w1"}]}],
            "sinks": [{"name": "notified", "kind": "python", "from": "relay", "worker": "w2",
                       "params": {"class": "tools.bench_ops:NotifyLog", "args": {"log": str(folder / "notified.json")}}}]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--period-ms", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalCluster([("w0", "edge"), ("w1", "edge"), ("w2", "edge")]) as c:
        folder = Path(tmp)
        report = c.run(plan(args.epochs, args.period_ms, folder))
        assert report["status"] == "completed", report["error"]
        closed = json.loads((folder / "closed.json").read_text())
        notified = {int(k): v for k, v in json.loads((folder / "notified.json").read_text()).items()}
    lat = np.array([notified[e] - closed[e] for e in range(len(closed))]) * 1000
    print(f"epochs: {len(lat)}, one every {args.period_ms} ms, source on w0 -> map on w1 -> notify on w2")
    print(f"epoch close -> notification two processes downstream: median {np.median(lat):.3f} ms, "
          f"p99 {np.percentile(lat, 99):.3f} ms, max {lat.max():.3f} ms")


if __name__ == "__main__":
    main()
