"""What recovery costs: checkpointing overhead, and the time a lost worker costs.

1. Pipeline (b) of tools/bench_runtime.py (1,000,000 events, count per key per 1-second
   window, 1,000 epochs) in one process, without checkpoints and with a checkpoint every 1, 2
   (the default for 1-second epochs) and 10 epochs: every snapshot packed with the record codec
   and committed to a SQLite recovery store, as a worker and its coordinator do.
2. The traffic example (--local, --speed 0: as fast as the detectors go) with "recovery": false
   and with the default checkpoints: frames/s and end-to-end latency (skip with --no-traffic).
3. Recovery time: the relational example with one spare; cloud-0 is SIGKILLed at a random
   point: detection, recovery time (loss detected -> next generation started), output pause
   (the sinks' last epoch before the loss -> their first after it).

Usage: python tools/bench_recovery.py [--quick] [--no-traffic] [--repeat N]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamflow.communication.codec import pack_value  # noqa: E402
from streamflow.recovery.checkpoint import Checkpointer  # noqa: E402
from streamflow.recovery.store import RecoveryStore  # noqa: E402
from tools.bench_runtime import events, flow_b  # noqa: E402
from tools.benchutil import table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def pipeline_b(data: list, every: int | None) -> tuple[int, list]:
    """Pipeline (b); with `every`, a checkpoint every `every` epochs: each snapshot taken and
    packed with the record codec, as a worker does before sending it to its coordinator.
    Returns (results, snapshots)."""
    flow, results = flow_b(data)
    worker = flow.worker()
    snapshots: list = []
    if every is not None:
        worker.checkpointer = Checkpointer(worker, every, 0, lambda snap: snapshots.append(
            (snap.epoch, snap.operator, snap.instance, pack_value(snap.state), snap.notify)))
    worker.run()
    return results[0], snapshots


def store_time(snapshots: list, folder: Path) -> float:
    """Seconds the coordinator's SQLite store takes to commit these snapshots."""
    store = RecoveryStore(tempfile.mkdtemp(dir=folder))
    store.begin_run("bench", {}, "", "", None, 1)
    store.set_stateful("bench", {(op_, inst) for _e, op_, inst, _s, _n in snapshots})
    t = time.perf_counter()
    for epoch, op_, inst, state, notify in snapshots:
        store.add_snapshot("bench", 0, epoch, op_, inst, state, notify)
    took = time.perf_counter() - t
    store.close()
    return took


def traffic(recovery: bool, folder: Path) -> dict:
    """The traffic example at --speed 0, with or without checkpoints; its report."""
    plan = json.loads((REPO / "examples" / "traffic" / "plan.json").read_text())
    if not recovery:
        plan["recovery"] = False
    path = REPO / "examples" / "traffic" / f".bench-recovery-{'on' if recovery else 'off'}.json"
    path.write_text(json.dumps(plan))
    report = folder / f"traffic-{recovery}.json"
    try:
        subprocess.run([sys.executable, "-m", "streamflow.cli", "run", str(path), "--local", "--speed", "0", "--quiet",
                        "--report", str(report), "--recovery-dir", str(folder / f"rec-{recovery}")],
                       check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    finally:
        path.unlink(missing_ok=True)
    return json.loads(report.read_text())


def recovery_time(folder: Path, seed: int) -> dict:
    """One relational run with one spare and cloud-0 SIGKILLed between 30 % and 70 %."""
    from tools.chaos_run import kill
    plan = json.loads((REPO / "examples" / "relational" / "plan.json").read_text())
    for s in plan["sources"]:
        s.update(count=8000, rate_per_s=1000)
    path = folder / "relational" / "plan.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan))
    proc = subprocess.Popen([sys.executable, "-m", "streamflow.cli", "run", str(path), "--local", "--spares", "1",
                             "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    import random
    time.sleep(2 + 8 * random.Random(seed).uniform(0.3, 0.7))  # ~2 s to start, 8 s of stream
    kill("cloud-0")
    proc.wait(timeout=120)
    report = json.loads((path.parent / "out" / "vehicle-speeds-run.json").read_text())
    return report["failures"][0] if report["failures"] else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x fewer events")
    parser.add_argument("--no-traffic", action="store_true", help="skip the traffic runs (about 2 minutes)")
    parser.add_argument("--repeat", type=int, default=5, help="best of N interleaved runs (default 5)")
    args = parser.parse_args()
    n = 1_000_000 // (10 if args.quick else 1)
    data = events(n)
    with tempfile.TemporaryDirectory(prefix="bench-recovery-") as tmp:
        folder = Path(tmp)
        configs = (None, 1, 2, 10)
        best: dict = {c: float("inf") for c in configs}
        result: dict = {}
        for _ in range(args.repeat):  # interleaved, so drift in the machine's speed hits all alike
            for every in configs:
                t = time.perf_counter()
                result[every] = pipeline_b(data, every)
                best[every] = min(best[every], time.perf_counter() - t)
        base, out = best[None], result[None][0]
        rows = [["(b) no checkpoints", f"{n / base / 1e6:.2f} M/s", "-", "-", "-"]]
        for every in configs[1:]:
            (out_c, snaps), t = result[every], best[every]
            assert out_c == out
            store_s = store_time(snaps, folder)
            rows.append([f"(b) checkpoint every {every} epochs", f"{n / t / 1e6:.2f} M/s", f"{len(snaps)}",
                         f"{(t / base - 1) * 100:+.1f} %", f"{store_s / max(1, len(snaps)) * 1e6:.0f} us"])
        print(table(rows, ["pipeline (one process)", "records/s", "snapshots", "worker overhead",
                           "store commit (coordinator)"]))
        print(f"pipeline (b) handles {1000 / base:,.0f} one-second epochs per second of wall time here; a "
              f"checkpoint every 2 epochs costs the worker the overhead above, and the coordinator one store "
              f"commit per snapshot")
        if not args.no_traffic:
            off, on = traffic(False, folder), traffic(True, folder)
            lat = lambda r: r["operators"]["detections"].get("record_latency_ms", {})  # noqa: E731
            rows = []
            for name, r in (("recovery off", off), ("checkpoints every 2 s (default)", on)):
                rows.append([name, f"{r['totals']['throughput_per_s']:.2f}", f"{lat(r).get('p50')}",
                             f"{lat(r).get('p99')}", f"{r.get('recovery', {}).get('checkpoints', 0)}"])
            print(table(rows, ["traffic --speed 0", "frames/s", "latency p50 ms", "latency p99 ms", "checkpoints"]))
            print(f"traffic overhead: {(off['totals']['throughput_per_s'] / on['totals']['throughput_per_s'] - 1) * 100:+.1f} % "
                  f"time per frame with checkpoints")
        f = recovery_time(folder, 0)
        print(f"recovery (relational, cloud-0 SIGKILLed, one spare): detected after {f.get('detected_after_s')} s, "
              f"recovery time {f.get('recovery_s')} s, output pause {f.get('output_pause_s')} s, "
              f"{f.get('epochs_replayed')} epochs replayed from checkpoint epoch {f.get('checkpoint_epoch')}")


if __name__ == "__main__":
    main()
