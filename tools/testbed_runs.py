"""Shared by tools/evaluate_runs.py and tools/bench_testbed.py: run a plan through the `streamflow
run` command (on the testbed or with --local) and read its report; price what a run moved."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from streamflow.testbed.infra import Infra

REPO = Path(__file__).resolve().parents[1]
BYTES_PER_GB = 1024 ** 3   # the planner's GB: KB/s x 3600 / 1024^2 with KB = 1024 bytes


class RunFailed(RuntimeError):
    """`streamflow run` exited non-zero; the message is its last error line."""


def run_plan(plan: Path, report: Path, *, state: Path | None = None, local: bool = False,
             speed: float | None = None, timeout: float = 900) -> dict[str, Any]:
    """The report of one `streamflow run` of `plan` (on the testbed in `state`, or --local)."""
    cmd = [sys.executable, "-m", "streamflow.cli", "run", str(plan), "--report", str(report), "--quiet"]
    cmd += ["--local"] if local else ["--testbed", *(["--state", str(state)] if state else [])]
    if speed is not None:
        cmd += ["--speed", str(speed)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"status {done.returncode}"]
        raise RunFailed(lines[-1])
    return json.loads(report.read_text())


def network_cost_per_hour(report: dict[str, Any], infra: Infra) -> tuple[float, dict[str, int]]:
    """Money per hour for the bytes the run moved between tiers (the report's links_bytes, data
    payload), priced per GB as infra.json prices that direction; traffic towards a lower tier
    (e.g. results sent back down to an operator placed beside them) at its link's upward price."""
    tier_of = {w: v["tier"] for w, v in report["workers"].items()}
    per_pair: dict[str, int] = {}
    cost = 0.0
    hours = report["duration_s"] / 3600
    for key, nbytes in report["links_bytes"].items():
        a, b = (part.strip() for part in key.split("->"))
        ta, tb = tier_of.get(a), tier_of.get(b)
        if ta is None or tb is None or ta == tb or not nbytes:
            continue
        price = infra.prices.get((ta, tb), infra.link(ta, tb).cost_per_gb)
        pair = f"{ta}->{tb}"
        per_pair[pair] = per_pair.get(pair, 0) + nbytes
        if hours > 0:
            cost += nbytes / BYTES_PER_GB * price * infra.comm_cost_scaling_factor / hours
    return cost, per_pair
