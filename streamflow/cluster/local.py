"""Worker processes on this machine: `--local` runs, and a LocalCluster for tests and benchmarks."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from streamflow.plan import Plan

REPO_ROOT = str(Path(__file__).resolve().parents[2])


def worker_command(name: str, tier: str, coordinator: str, *, device: str = "cpu", cost_per_hour: float = 0.0,
                   threads: int = 1, once: bool = False, bind: str = "tcp://127.0.0.1:0",
                   spare: bool = False) -> list[str]:
    """The streamflow-worker command line for one worker on this machine (data socket on `bind`)."""
    cmd = [sys.executable, "-m", "workers.main", "--tier", tier, "--name", name,
           "--coordinator", coordinator, "--device", device, "--cost-per-hour", str(cost_per_hour),
           "--threads", str(threads), "--bind", bind]
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

    def __init__(self, plan: Plan, coordinator: str, log_dir: Path) -> None:
        self.plan = plan
        self.coordinator = coordinator
        self.log_dir = log_dir
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
                                 cost_per_hour=w["cost_per_hour"], threads=int(w["threads"]), once=True)
            with (self.log_dir / f"{name}.log").open("wb") as log:
                self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                                    start_new_session=True)

    def start_spare(self, name: str) -> None:
        """A spare worker process (tier "any", one thread) the run can give a lost worker's role."""
        threads = max((int(w.extra.get("threads", 1)) for w in self.plan.workers.values()), default=1)
        cmd = worker_command(name, "any", self.coordinator, threads=threads, once=True, spare=True)
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


class LocalCluster:
    """Worker daemons started by hand on this machine that serve one run after another.

        with LocalCluster([("w0", "edge"), ("w1", "cloud")]) as cluster:
            report = cluster.run(plan_dict)
    """

    def __init__(self, workers: list[tuple[str, str]], threads: int = 1,
                 env: dict[str, dict[str, str]] | None = None, spares: list[tuple[str, str]] | None = None) -> None:
        self.workers = workers
        self.spares = spares or []
        self.threads = threads
        self.env = env or {}  # worker -> extra environment (tests vary PYTHONHASHSEED)
        self.listen = f"tcp://127.0.0.1:{free_port()}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="streamflow-cluster-")

    def __enter__(self) -> "LocalCluster":
        env = worker_env()
        for name, tier in self.workers:
            self.procs[name] = subprocess.Popen(worker_command(name, tier, self.listen, threads=self.threads),
                                                env={**env, **self.env.get(name, {})},
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name, tier in self.spares:
            self.procs[name] = subprocess.Popen(worker_command(name, tier, self.listen, threads=self.threads,
                                                               spare=True),
                                                env={**env, **self.env.get(name, {})},
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def kill(self, name: str) -> None:
        """SIGKILL one worker process (tests of recovery)."""
        self.procs[name].kill()

    def __exit__(self, *exc: Any) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        self._tmp.cleanup()

    def run(self, plan: dict[str, Any] | str | Path, **options: Any) -> dict[str, Any]:
        """Run a plan (a dict is written to a temporary plan.json) and return its report."""
        from streamflow.cluster.coordinator import Coordinator, Options
        from streamflow.plan import build_graph, load_plan
        from streamflow.runtime import run_coroutine
        if isinstance(plan, dict):
            folder = Path(options.pop("folder", None) or tempfile.mkdtemp(dir=self._tmp.name))
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "plan.json"
            path.write_text(json.dumps(plan))
        else:
            path = Path(plan)
        loaded = load_plan(path, speed=options.pop("speed", None))
        graph, placement = build_graph(loaded)
        opts = Options(listen=self.listen, quiet=options.pop("quiet", True), wait=options.pop("wait", 30), **options)
        return run_coroutine(Coordinator(loaded, graph, placement, opts).run())
