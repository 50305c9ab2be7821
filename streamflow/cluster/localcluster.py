"""Worker daemons started on this machine that serve one run after another (tests, benchmarks).

Apart from local.py because it drives a coordinator, which itself starts --local workers
through local.py: this way neither imports the other.
"""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from streamflow.cluster.coordinator import Coordinator, Options
from streamflow.cluster.local import free_port, worker_command, worker_env
from streamflow.communication.security import ephemeral_keys
from streamflow.plan import build_graph, load_plan
from streamflow.runtime import run_coroutine


class LocalCluster:
    """Worker daemons started by hand on this machine that serve one run after another.

        with LocalCluster([("w0", "edge"), ("w1", "cloud")]) as cluster:
            report = cluster.run(plan_dict)
    """

    def __init__(self, workers: list[tuple[str, str]], threads: int = 1,
                 env: dict[str, dict[str, str]] | None = None, spares: list[tuple[str, str]] | None = None,
                 secure: bool = False, allow_import: tuple[str, ...] = ("tests", "tools")) -> None:
        """`secure`: CURVE on every socket with keys made for this cluster; `allow_import`: what
        the workers may import beyond the project's operators (tests' and tools' operators)."""
        self.workers = workers
        self.spares = spares or []
        self.threads = threads
        self.env = env or {}  # worker -> extra environment (tests vary PYTHONHASHSEED)
        self.listen = f"tcp://127.0.0.1:{free_port()}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="streamflow-cluster-")
        self.keys = str(ephemeral_keys()) if secure else None
        self.worker_args = {"keys": self.keys, "allow_import": allow_import}

    def __enter__(self) -> "LocalCluster":
        env = worker_env()
        for name, tier in self.workers:
            self.procs[name] = subprocess.Popen(worker_command(name, tier, self.listen, threads=self.threads,
                                                               **self.worker_args),
                                                env={**env, **self.env.get(name, {})},
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name, tier in self.spares:
            self.procs[name] = subprocess.Popen(worker_command(name, tier, self.listen, threads=self.threads,
                                                               spare=True, **self.worker_args),
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
        if self.keys:
            shutil.rmtree(self.keys, ignore_errors=True)

    def run(self, plan: dict[str, Any] | str | Path, **options: Any) -> dict[str, Any]:
        """Run a plan (a dict is written to a temporary plan.json) and return its report."""
        if isinstance(plan, dict):
            folder = Path(options.pop("folder", None) or tempfile.mkdtemp(dir=self._tmp.name))
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "plan.json"
            path.write_text(json.dumps(plan))
        else:
            path = Path(plan)
        loaded = load_plan(path, speed=options.pop("speed", None))
        graph, placement = build_graph(loaded)
        opts = Options(listen=self.listen, quiet=options.pop("quiet", True), wait=options.pop("wait", 30),
                       keys=self.keys, **options)
        return run_coroutine(Coordinator(loaded, graph, placement, opts).run())
