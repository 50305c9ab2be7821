"""`streamflow testbed status`: what the state file says, checked against the system (namespace
there, worker process alive, delay line alive, qdisc in place)."""
from __future__ import annotations

from typing import Any

from streamflow.testbed import netns, shaping
from streamflow.testbed.down import _alive
from streamflow.testbed.state import State


def check(state: State) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per host and a list of problems (empty when the testbed is healthy)."""
    problems: list[str] = []
    spaces = set(netns.namespaces())
    procs = {r["what"]: r for r in state.resources if r["kind"] == "process"}
    rows = []
    for name, h in state.doc.get("hosts", {}).items():
        proc = procs.get(name, {})
        alive = bool(proc.get("pid")) and _alive(proc["pid"], proc.get("start"))
        if h["namespace"] not in spaces:
            problems.append(f"namespace {h['namespace']} of {name} is missing")
        if not alive:
            problems.append(f"worker {name} is not running (log: {h['log']})")
        rows.append({"host": name, **h, "running": alive})
    line = procs.get("delay-line")
    if line is not None and not (line.get("pid") and _alive(line["pid"], line.get("start"))):
        problems.append("the delay line is not running: tier-to-tier links are down")
    for r in state.resources:
        if r["kind"] == "qdisc" and r["ns"] in spaces and "tbf" not in _qdisc_of(r["ns"], r["dev"]):
            problems.append(f"no tbf qdisc on {r['dev']} in {r['ns']}")
    return rows, problems


def _qdisc_of(ns: str, dev: str) -> str:
    return "\n".join(line for line in shaping.qdiscs(ns).splitlines() if f"dev {dev} " in line)
