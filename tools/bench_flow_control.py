"""Flow control over a long run: a source producing 1 MB numpy frames as fast as it can into a
sink that sleeps 10 ms per frame, on two worker processes. Prints the frames moved and the peak
of the two processes' summed resident memory (target: under 500 MB for a 60 s run).
Usage: python tools/bench_flow_control.py [--seconds 60] [--credit-window BYTES]
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamflow.cluster.local import free_port, worker_command, worker_env  # noqa: E402


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--credit-window", type=int, default=16 << 20)
    args = parser.parse_args()
    listen = f"tcp://127.0.0.1:{free_port()}"
    workers = {n: subprocess.Popen(worker_command(n, "edge", listen, once=True, allow_import=("tools",)), env=worker_env(),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for n in ("w0", "w1")}
    with tempfile.TemporaryDirectory() as tmp:
        plan = {"version": 1, "name": "flow", "workers": [{"name": n, "tier": "edge"} for n in workers],
                "sources": [{"name": "frames", "kind": "python", "worker": "w0",
                             "params": {"class": "tools.bench_ops:FrameSource",
                                        "args": {"count": 10**9, "shape": [1 << 20]}}}],
                "operators": [],
                "sinks": [{"name": "slow", "kind": "python", "from": "frames", "worker": "w1",
                           "params": {"class": "tools.bench_ops:SleepySink", "args": {"ms": 10}}}]}
        path = Path(tmp) / "plan.json"
        path.write_text(json.dumps(plan))
        report_path = Path(tmp) / "run.json"
        coordinator = subprocess.Popen([sys.executable, "-m", "streamflow.cli", "run", str(path), "--listen", listen,
                                        "--quiet", "--timeout", str(args.seconds), "--report", str(report_path),
                                        "--credit-window", str(args.credit_window), "--allow-import", "tools"],
                                       env=worker_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak, samples, t0 = 0, [], time.monotonic()
        try:
            while coordinator.poll() is None:
                total = sum(rss_bytes(p.pid) for p in workers.values())
                peak = max(peak, total)
                samples.append((time.monotonic() - t0, total))
                time.sleep(0.5)
        except KeyboardInterrupt:
            coordinator.send_signal(signal.SIGINT)
        for p in workers.values():
            p.wait(timeout=30)
        report = json.loads(report_path.read_text())
    sent = report["operators"]["frames"]["records"]
    consumed = report["operators"]["slow"]["records"]
    late = [mb for t, mb in samples if t > 10]
    print(f"{args.seconds:.0f} s run, credit window {args.credit_window >> 20} MiB: {sent} frames of 1 MB sent, "
          f"{consumed} consumed ({consumed / args.seconds:.0f}/s)")
    print(f"resident memory of both workers: peak {peak / 2**20:.0f} MB, "
          f"after 10 s between {min(late) / 2**20:.0f} and {max(late) / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
