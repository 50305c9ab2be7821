"""Worker processes on this machine for `--local` runs (LocalCluster, in localcluster.py, serves
tests and benchmarks)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from streamflow.plan import Plan

REPO_ROOT = str(Path(__file__).resolve().parents[2])


def worker_command(name: str, tier: str, coordinator: str, *, device: str = "cpu", cost_per_hour: float = 0.0,
                   threads: int = 1, once: bool = False, bind: str = "tcp://127.0.0.1:0",
                   spare: bool = False, metrics_port: int | None = None, keys: str | None = None,
                   allow_import: Iterable[str] = ()) -> list[str]:
    """The streamflow-worker command line for one worker on this machine (data socket on `bind`;
    Prometheus metrics on `metrics_port`, 0 for any free one; CURVE with the key folder `keys`;
    importing what `allow_import` adds to the defaults)."""
    cmd = [sys.executable, "-m", "streamflow_workers.main", "--tier", tier, "--name", name,
           "--coordinator", coordinator, "--device", device, "--cost-per-hour", str(cost_per_hour),
           "--threads", str(threads), "--bind", bind]
    if metrics_port is not None:
        cmd += ["--metrics-port", str(metrics_port)]
    cmd += ["--keys", keys] if keys else []
    cmd += [arg for prefix in allow_import for arg in ("--allow-import", prefix)]
    return cmd + (["--once"] if once else []) + (["--spare"] if spare else [])


def worker_env() -> dict[str, str]:
    """The environment for worker processes: this checkout importable even when not installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalWorkers:
    """Worker processes started for one run, with their logs; stopped when the run ends."""

    def __init__(self, plan: Plan, coordinator: str, log_dir: Path, metrics: bool = True,
                 keys: str | None = None, allow_import: Iterable[str] = ()) -> None:
        self.plan = plan
        self.coordinator = coordinator
        self.security_args = {"keys": keys, "allow_import": tuple(allow_import)}
        self.log_dir = log_dir
        self.metrics_port = 0 if metrics else None  # each worker serves /metrics on a free port
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, extra: list[dict[str, Any]] | None = None) -> None:
        """The plan's workers, and `extra` ones (name, tier, device, cost_per_hour, threads) a
        later plan may use (--adapt)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = worker_env()
        workers = [{"name": n, "tier": w.tier, "device": w.device, "cost_per_hour": w.cost_per_hour,
                    "threads": int(w.extra.get("threads", 1))}
                   for n, w in ((n, self.plan.workers[n]) for n in self.plan.workers_used())]
        workers += [w for w in extra or [] if w["name"] not in {x["name"] for x in workers}]
        for w in workers:
            name = w["name"]
            cmd = worker_command(name, w["tier"], self.coordinator, device=w["device"],
                                 cost_per_hour=w["cost_per_hour"], threads=int(w["threads"]), once=True,
                                 metrics_port=self.metrics_port, **self.security_args)
            with (self.log_dir / f"{name}.log").open("wb") as log:
                self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                                    start_new_session=True)

    def start_spare(self, name: str) -> None:
        """A spare worker process (tier "any", one thread) the run can give a lost worker's role."""
        threads = max((int(w.extra.get("threads", 1)) for w in self.plan.workers.values()), default=1)
        cmd = worker_command(name, "any", self.coordinator, threads=threads, once=True, spare=True,
                             metrics_port=self.metrics_port, **self.security_args)
        with (self.log_dir / f"{name}.log").open("wb") as log:
            self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=worker_env(),
                                                start_new_session=True)

    def exited(self) -> dict[str, int]:
        """Workers whose process has ended, with exit codes."""
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def log_tail(self, name: str, lines: int = 5) -> str:
        path = self.log_dir / f"{name}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace_s: float = 5.0) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    p.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
