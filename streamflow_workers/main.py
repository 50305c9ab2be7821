"""`streamflow-worker`: the process every host runs; it serves the runs a coordinator deploys."""
from __future__ import annotations

import argparse
import os
import re
import socket
import sys
from collections.abc import Sequence

from streamflow.cluster.cli import add_security_arguments
from streamflow.cluster.worker_process import WorkerInfo, run_worker
from streamflow.errors import StreamflowError
from streamflow.communication.security import SecurityError, require_keys, security_for

DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


def limit_threads(threads: int) -> None:
    """Model runtimes use `threads` cores (OpenCV's pool, torch, onnxruntime, OpenVINO), so a worker
    given one thread uses one core, as the planner's profile assumed."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    from streamflow_workers.runtimes import set_threads
    set_threads(threads)  # cv2's pool, and onnxruntime, OpenVINO and torch sessions loaded later


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="streamflow-worker", description=__doc__.splitlines()[0])
    p.add_argument("--tier", required=True, help="edge, hub, cloud, ... (as the plan names tiers)")
    p.add_argument("--name", default=None, help="worker name the plan uses (default: HOST-TIER)")
    p.add_argument("--coordinator", default="tcp://127.0.0.1:7077", help="coordinator address")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--cost-per-hour", type=float, default=0.0, help="hourly price of this worker")
    p.add_argument("--bind", default="tcp://0.0.0.0:0", help="data socket address (port 0 = any)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="threads for CPU-heavy operator work (default: cores)")
    p.add_argument("--once", action="store_true", help="exit after one run")
    p.add_argument("--spare", action="store_true",
                   help="a spare: take over the operators of a worker a run loses (any plan worker of this tier)")
    add_security_arguments(p, "this worker's key pair (NAME.key_secret, or the only secret key there) and the "
                              "public keys it admits, the coordinator's as coordinator.key")
    p.add_argument("--preload", action="store_true",
                   help="import the model runtimes before registering (a host under a small CPU quota "
                        "otherwise spends seconds in imports that hold the GIL during a deployment)")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve Prometheus metrics at http://HOST:PORT/metrics (0: any free port; "
                        "default: none)")
    p.add_argument("--metrics-host", default="127.0.0.1",
                   help="address the metrics endpoint listens on (default 127.0.0.1; 0.0.0.0 for a "
                        "Prometheus on another host)")
    return p


PRELOAD = ("streamflow_workers.runtimes.opencv_dnn", "streamflow_workers.runtimes.onnxruntime_rt",
           "streamflow_workers.runtimes.derived",
           "streamflow_workers.variants", "streamflow_workers.kinds", "streamflow.dataflow.kinds",
           "streamflow_workers.detect", "streamflow_workers.embed.histogram", "streamflow_workers.tracking", "streamflow_traces.replay", "streamflow.metrics")


def preload() -> None:
    """Import what a deployment would import lazily (torch and onnx through the model runtimes,
    the operator kinds, detectors, trackers, scipy, the trace reader), before the worker
    registers: under a small CPU quota those imports take seconds, hold the interpreter (starving
    the heartbeat) and would delay the first run's first frames."""
    import importlib
    import pkgutil
    try:  # the runtime a re-planned variant most often names (:ort); its import is the slowest
        importlib.import_module("onnxruntime")
    except ImportError:
        pass
    for name in PRELOAD:
        module = importlib.import_module(name)
        for sub in pkgutil.iter_modules(getattr(module, "__path__", [])):
            if not sub.name.startswith(("mobilenet", "osnet")):  # heavy embedders load their weights lazily
                importlib.import_module(f"{name}.{sub.name}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not DEVICE.match(args.device):
        print(f"error: --device: expected cpu, cuda or cuda:N, got {args.device!r}", file=sys.stderr)
        return 2
    if not args.coordinator.startswith("tcp://"):
        print(f"error: --coordinator: expected tcp://HOST:PORT, got {args.coordinator!r}", file=sys.stderr)
        return 2
    if args.threads < 1:
        print("error: --threads: must be at least 1", file=sys.stderr)
        return 2
    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        print(f"error: --metrics-port: expected 0..65535, got {args.metrics_port}", file=sys.stderr)
        return 2
    name = args.name or f"{socket.gethostname()}-{args.tier}"
    try:
        require_keys(args.keys, args.insecure, [args.bind, args.coordinator], "--bind/--coordinator")
        security = security_for(args.keys, name)
    except SecurityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_status
    limit_threads(args.threads)
    if args.preload:
        preload()
    info = WorkerInfo(name=name, tier=args.tier, device=args.device, cost_per_hour=args.cost_per_hour,
                      threads=args.threads, spare=args.spare)
    try:
        metrics = None if args.metrics_port is None else (args.metrics_host, args.metrics_port)
        return run_worker(info, args.coordinator, args.bind, args.once, metrics, security,
                          tuple(args.allow_import))
    except StreamflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
