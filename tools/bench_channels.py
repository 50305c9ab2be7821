"""Channels between two worker processes on loopback, next to raw pyzmq in the same run.

Prints: small records/s (8-byte payloads in batches of 1000) across processes; GB/s for 1 MB and
6 MB (1080p BGR) numpy frames next to raw pyzmq PUSH/PULL, both timed from the first to the last
frame at the receiver (one frame per batch and per epoch, with progress and credits); pipeline (a) of bench_runtime with its
source split over 2 worker processes next to bytewax 0.21.1 run the same way (2-partition source,
2 processes, batch 1000); then the same small records and 1 MB frames over CURVE (encrypted,
authenticated: --keys) against plaintext, both in this run. Frames and pipeline (a) alternate
with their peer for ROUNDS rounds; each side's best counts.
Usage: python tools/bench_channels.py [--quick] [--no-bytewax] [--curve-only] [--only frames|pipeline]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zmq  # noqa: E402

from streamflow.cluster.local import free_port  # noqa: E402
from streamflow.cluster.localcluster import LocalCluster  # noqa: E402
from tools.benchutil import run_bytewax, table  # noqa: E402

MB = 1 << 20
FRAME_1MB = [1024, 1024]
FRAME_6MB = [1080, 1920, 3]
ROUNDS = 5
"""Rounds in which streamflow and its peer (raw pyzmq, bytewax) alternate; each side's best
counts. One run's speed on a shared VM moves by up to 2x within seconds, and bytewax's own time
includes its processes finding each other (1.5 to 6.6 M records/s from run to run here)."""


def _pull(address: str, count: int, out: "mp.Queue[float]") -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.RCVHWM, 1000)
    sock.bind(address)
    sock.recv(copy=False)
    t = time.perf_counter()
    for _ in range(count - 1):
        sock.recv(copy=False)
    out.put(time.perf_counter() - t)
    sock.close()
    ctx.term()


def raw_pyzmq(size: int, count: int) -> float:
    """Messages per second of `size` bytes from one process to another with PUSH/PULL."""
    address = f"tcp://127.0.0.1:{free_port()}"
    result: mp.Queue[float] = mp.Queue()
    receiver = mp.Process(target=_pull, args=(address, count, result))
    receiver.start()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.SNDHWM, 1000)
    sock.connect(address)
    payload = bytes(size) if size < 65536 else memoryview(bytearray(size))
    for _ in range(count):
        sock.send(payload, copy=size < 65536)
    seconds = result.get()
    receiver.join()
    sock.close()
    ctx.term()
    return (count - 1) / seconds


def pair_plan(source: dict, workers: list[str], log: str | None = None) -> dict:
    return {"version": 1, "name": "channels",
            "workers": [{"name": w, "tier": "edge"} for w in workers],
            "sources": [{"name": "src", "kind": "python", **source}],
            "operators": [],
            "sinks": [{"name": "count", "kind": "python", "from": "src", "worker": workers[-1],
                       "params": {"class": "tools.bench_ops:CountSink", "args": {"log": log}}}]}


def streamflow_rate(cluster: LocalCluster, plan: dict, units: int) -> float:
    """Units per second of the whole run, start-up and completion included."""
    report = cluster.run(plan)
    assert report["status"] == "completed", report["error"]
    return units / report["duration_s"]


def streamflow_stream_rate(cluster: LocalCluster, make_plan: Callable[[str], dict]) -> float:
    """Batches per second from the first to the last at the sink, as raw_pyzmq times its
    receiver: the steady stream, without the run's start-up and completion."""
    with tempfile.TemporaryDirectory() as tmp:
        log = str(Path(tmp) / "sink.json")
        report = cluster.run(make_plan(log))
        assert report["status"] == "completed", report["error"]
        seen = json.loads(Path(log).read_text())
    return (seen["batches"] - 1) / (seen["last"] - seen["first"])


def split_pipeline(n: int) -> dict:
    """Pipeline (a) with its source, map, filter and count sink on both workers joined by forward
    edges: each process handles its half alone, as bytewax's 2-process run does (no exchange)."""
    both = [{"worker": "w0"}, {"worker": "w1"}]
    fwd = lambda up: [{"from": up, "partition": "forward"}]  # noqa: E731
    return {"version": 1, "name": "pipeline-a",
            "workers": [{"name": "w0", "tier": "edge"}, {"name": "w1", "tier": "edge"}],
            "sources": [{"name": "inp", "kind": "python", "placement": both,
                         "params": {"class": "tools.bench_ops:RangeSource", "args": {"count": n, "batch": 1000}}}],
            "operators": [
                {"name": "double", "kind": "map", "params": {"fn": {"expr": "r * 2"}}, "inputs": fwd("inp"), "placement": both},
                {"name": "even", "kind": "filter", "params": {"where": {"expr": "r % 2 == 0"}}, "inputs": fwd("double"),
                 "placement": both}],
            "sinks": [{"name": "count", "kind": "python", "from": "even", "partition": "forward", "placement": both,
                       "params": {"class": "tools.bench_ops:CountSink"}}]}


def curve_vs_plaintext(n_small: int, n_1mb: int, repeat: int) -> None:
    """Small records/s and 1 MB frames GB/s between two workers, plaintext next to CURVE."""
    rates: dict[bool, tuple[float, float]] = {}
    for secure in (False, True):
        with LocalCluster([("w0", "edge"), ("w1", "edge")], secure=secure) as cluster:
            small = pair_plan({"worker": "w0", "params": {
                "class": "tools.bench_ops:RangeSource", "args": {"count": n_small, "batch": 1000}}}, ["w0", "w1"])
            frames = pair_plan({"worker": "w0", "params": {
                "class": "tools.bench_ops:FrameSource", "args": {"count": n_1mb, "shape": FRAME_1MB}}}, ["w0", "w1"])
            best = lambda plan, n: max(streamflow_rate(cluster, plan, n) for _ in range(repeat))  # noqa: E731
            rates[secure] = (best(small, n_small), best(frames, n_1mb) * MB / 1e9)
    (plain_small, plain_1mb), (curve_small, curve_1mb) = rates[False], rates[True]
    print(table([
        ["small records, lists of ints (msgpack)", f"{plain_small / 1e6:.2f} M records/s",
         f"{curve_small / 1e6:.2f} M records/s", f"{curve_small / plain_small:.0%}"],
        ["1 MB numpy frames", f"{plain_1mb:.2f} GB/s", f"{curve_1mb:.2f} GB/s", f"{curve_1mb / plain_1mb:.0%}"],
    ], ["what", "plaintext", "CURVE (--keys)", "CURVE / plaintext"]))
    print(f"CURVE: small records {curve_small:,.0f}/s ({curve_small / plain_small:.0%} of plaintext), "
          f"1 MB frames {curve_1mb:.2f} GB/s ({curve_1mb / plain_1mb:.0%} of plaintext {plain_1mb:.2f} GB/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages")
    parser.add_argument("--no-bytewax", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    parser.add_argument("--curve-only", action="store_true", help="only CURVE against plaintext")
    parser.add_argument("--only", choices=["frames", "pipeline"],
                        help="only the 1 MB and 6 MB frames (next to raw pyzmq) or only pipeline (a)")
    args = parser.parse_args()
    q = 5 if args.quick else 1
    n_small, n_1mb, n_6mb, n_a = 4_000_000 // q, 3000 // q, 600 // q, 2_000_000 // q
    if args.curve_only:
        curve_vs_plaintext(n_small, n_1mb, args.repeat)
        return
    best = lambda f: max(f() for _ in range(args.repeat))  # noqa: E731
    if args.only == "frames":
        with LocalCluster([("w0", "edge"), ("w1", "edge")]) as cluster:
            frame_rows(cluster, args.repeat, n_1mb, n_6mb, [])
        return
    if args.only == "pipeline":
        with LocalCluster([("w0", "edge"), ("w1", "edge")]) as cluster:
            pipeline_line(cluster, n_a, args)
        return

    raw_small = best(lambda: raw_pyzmq(16, 1_000_000 // q))
    with LocalCluster([("w0", "edge"), ("w1", "edge")]) as cluster:
        small = lambda numpy: pair_plan({"worker": "w0", "params": {  # noqa: E731
            "class": "tools.bench_ops:RangeSource", "args": {"count": n_small, "batch": 1000, "numpy": numpy}}},
            ["w0", "w1"])
        ours_small = best(lambda: streamflow_rate(cluster, small(False), n_small))
        ours_small_np = best(lambda: streamflow_rate(cluster, small(True), n_small))
        rows = [
            ["small records, lists of ints (msgpack)", f"{ours_small / 1e6:.2f} M records/s",
             f"{raw_small / 1e6:.2f} M msgs/s (16 B)", f"{ours_small / raw_small:.2f}x"],
            ["small records, numpy int64 blocks", f"{ours_small_np / 1e6:.2f} M records/s",
             f"{raw_small / 1e6:.2f} M msgs/s (16 B)", f"{ours_small_np / raw_small:.2f}x"],
        ]
        frame_rows(cluster, args.repeat, n_1mb, n_6mb, rows)
        print(f"small records/s across processes: {ours_small:,.0f} (lists), {ours_small_np:,.0f} (numpy)")
        pipeline_line(cluster, n_a, args)
    curve_vs_plaintext(n_small, n_1mb, args.repeat)


def frame_rows(cluster: LocalCluster, repeat: int, n_1mb: int, n_6mb: int, rows: list[list[str]]) -> None:
    """1 MB and 6 MB frames next to raw pyzmq, the two alternating for ROUNDS rounds (or
    `repeat`, if more) with each side's best counting, so both see the same machine states;
    prints the table with `rows` (the small records) above them."""
    frames = lambda shape, n: lambda log: pair_plan({"worker": "w0", "params": {  # noqa: E731
        "class": "tools.bench_ops:FrameSource", "args": {"count": n, "shape": shape}}}, ["w0", "w1"], log)
    rounds = max(ROUNDS, repeat)

    def pair(size: int, shape: list[int], n: int) -> tuple[float, float]:
        raw = ours = 0.0
        for _ in range(rounds):
            raw = max(raw, raw_pyzmq(size, n) * size / 1e9)
            ours = max(ours, streamflow_stream_rate(cluster, frames(shape, n)) * size / 1e9)
        return raw, ours
    raw_1mb, ours_1mb = pair(MB, FRAME_1MB, n_1mb)
    raw_6mb, ours_6mb = pair(6_220_800, FRAME_6MB, n_6mb)
    rows += [
        ["1 MB numpy frames", f"{ours_1mb:.2f} GB/s", f"{raw_1mb:.2f} GB/s", f"{ours_1mb / raw_1mb:.0%}"],
        ["6 MB numpy frames (1080p BGR)", f"{ours_6mb:.2f} GB/s", f"{raw_6mb:.2f} GB/s", f"{ours_6mb / raw_6mb:.0%}"],
    ]
    print(table(rows, ["what", "streamflow (2 worker processes)", "raw pyzmq PUSH/PULL", "ratio"]))
    print(f"6 MB frames: {ours_6mb:.2f} GB/s = {ours_6mb / raw_6mb:.0%} of raw pyzmq {raw_6mb:.2f} GB/s")
    print(f"1 MB frames: {ours_1mb:.2f} GB/s = {ours_1mb / raw_1mb:.0%} of raw pyzmq {raw_1mb:.2f} GB/s")


def pipeline_line(cluster: LocalCluster, n_a: int, args: argparse.Namespace) -> None:
    """Pipeline (a) over 2 worker processes and bytewax with 2 processes, run in turn."""
    ours_a = bw = 0.0
    for _ in range(max(args.repeat, ROUNDS)):
        ours_a = max(ours_a, streamflow_rate(cluster, split_pipeline(n_a), n_a))
        if not args.no_bytewax:
            bw = max(bw, run_bytewax(["a", str(n_a), "1000"], 1, processes=2)["records_per_s"])
    line = f"pipeline (a), source split over 2 worker processes: {ours_a / 1e6:.2f} M records/s"
    if not args.no_bytewax:
        line += f"; bytewax 0.21.1, 2 processes: {bw / 1e6:.2f} M records/s; ratio {ours_a / bw:.2f}"
    print(line)


if __name__ == "__main__":
    main()
