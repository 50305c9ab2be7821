"""`--local`: start the plan's workers as processes on this machine."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from streamflow.plan import Plan


class LocalWorkers:
    """Worker processes started for one run, with their logs; stopped when the run ends."""

    def __init__(self, plan: Plan, coordinator: str, log_dir: Path) -> None:
        self.plan = plan
        self.coordinator = coordinator
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        repo_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (repo_root, env.get("PYTHONPATH")) if p)
        for name in self.plan.workers_used():
            w = self.plan.workers[name]
            threads = int(w.extra.get("threads", 1))
            cmd = [sys.executable, "-m", "workers.main", "--tier", w.tier, "--name", name,
                   "--coordinator", self.coordinator, "--device", w.device,
                   "--cost-per-hour", str(w.cost_per_hour), "--threads", str(threads),
                   "--bind", "tcp://127.0.0.1:0", "--once"]
            log = (self.log_dir / f"{name}.log").open("wb")
            self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
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
