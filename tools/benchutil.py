"""Shared helpers for tools/bench_*.py: timing, a throw-away bytewax venv, result printing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BYTEWAX_VERSION = "0.21.1"
TOOLS = Path(__file__).resolve().parent


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Smallest wall time of `repeat` runs of fn() and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def bytewax_python(venv: Path | None = None) -> Path:
    """A Python with bytewax==0.21.1 in a throw-away venv (created on first use, never a dependency)."""
    venv = venv or Path(os.environ.get("STREAMFLOW_BENCH_VENV",
                                       Path.home() / ".cache" / "streamflow" / f"bytewax-{BYTEWAX_VERSION}"))
    python = venv / "bin" / "python"
    if python.exists():
        probe = subprocess.run([str(python), "-c", "import bytewax"], capture_output=True)
        if probe.returncode == 0:
            return python
    print(f"creating a throw-away venv with bytewax=={BYTEWAX_VERSION} at {venv} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", f"bytewax=={BYTEWAX_VERSION}"], check=True)
    return python


def run_bytewax(args: list[str], repeat: int, processes: int = 1) -> dict[str, Any]:
    """Best of `repeat` runs of tools/bytewax_pipelines.py (one JSON line each)."""
    python = bytewax_python()
    best: dict[str, Any] | None = None
    for _ in range(repeat):
        if processes == 1:
            out = subprocess.run([str(python), str(TOOLS / "bytewax_pipelines.py"), *args],
                                 capture_output=True, text=True, check=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
        else:
            result = _run_bytewax_cluster(python, args, processes)
        if best is None or result["records_per_s"] > best["records_per_s"]:
            best = result
    assert best is not None
    return best


def _run_bytewax_cluster(python: Path, args: list[str], processes: int) -> dict[str, Any]:
    """bytewax's own multi-process mode: N processes on loopback, each with one worker."""
    import socket
    ports = []
    for _ in range(processes):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    addresses = ";".join(f"127.0.0.1:{p}" for p in ports)
    procs = [subprocess.Popen([str(python), str(TOOLS / "bytewax_pipelines.py"), *args,
                               "--cluster", addresses, str(i)],
                              stdout=subprocess.PIPE, text=True) for i in range(processes)]
    results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    seconds = max(r["seconds"] for r in results)
    records = results[0]["records"]
    return {"records": records, "seconds": seconds, "records_per_s": records / seconds,
            "outputs": sum(r["outputs"] for r in results)}


def table(rows: list[list[str]], header: list[str]) -> str:
    """A markdown table."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])
