"""`streamflow testbed down`: undo everything the state file lists, in the order that lets each
step succeed (processes, then their cgroups, then qdiscs, devices and namespaces).

It works from any state: a testbed that is up, a half-built one whose `up` crashed or was
SIGKILLed (every resource is recorded before it is made), or one partly taken down already.
Each step skips what is already gone, so running it twice is harmless. Processes are matched by
pid and kernel start time, so a recycled pid is never signalled; whatever runs in a testbed
cgroup without a recorded pid is killed when its cgroup is removed.
"""
from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from streamflow.testbed import cgroups, netns, shaping
from streamflow.testbed.state import DEFAULT_DIR, Lock, State, TestbedError, process_start

GRACE_S = 5.0


def take_down(state_dir: str | Path = DEFAULT_DIR) -> list[str] | None:
    """Take the testbed in `state_dir` down; None if there was none, else what could not be
    removed (empty when everything is gone)."""
    with Lock(state_dir):
        state = State.load(state_dir)
        if state is None:
            return None
        return teardown(state)


def teardown(state: State) -> list[str]:
    """Remove every recorded resource; returns the ones still there afterwards."""
    if state.path.exists():
        state.update(status="stopping")
    res = state.resources
    _stop_processes([r for r in res if r["kind"] == "process"])
    left: list[str] = []
    for r in reversed([r for r in res if r["kind"] == "cgroup"]):  # children before their parent
        left += cgroups.remove(r["dirs"])
    for r in res:
        if r["kind"] == "qdisc" and r["ns"] in _namespaces():
            shaping.unshape(r["ns"], r["dev"])
    for r in reversed([r for r in res if r["kind"] in ("veth", "link")]):
        _quietly(netns.delete_link, r["name"], r["ns"])
    for r in reversed([r for r in res if r["kind"] == "netns"]):
        _quietly(netns.delete_namespace, r["name"])
    existing = set(_namespaces())
    left += [f"namespace {r['name']}" for r in res if r["kind"] == "netns" and r["name"] in existing]
    left += [f"interface {r['name']}" for r in res
             if r["kind"] in ("veth", "link") and r["ns"] is None and netns.link_exists(r["name"])]
    left += [f"process {r['pid']} ({r['what']})" for r in res
             if r["kind"] == "process" and r.get("pid") and _alive(r["pid"], r.get("start"))]
    if not left:
        state.remove()
        (state.dir / "delayline.ready").unlink(missing_ok=True)
        (state.dir / "delayline.json").unlink(missing_ok=True)  # the delay line's config, written by up
        shutil.rmtree(state.dir / "keys", ignore_errors=True)
    else:
        state.update(status="down-incomplete", left=left)
    return left


def _namespaces() -> list[str]:
    try:
        return netns.namespaces()
    except TestbedError:
        return []


def _quietly(fn, *args) -> None:
    try:
        fn(*args)
    except TestbedError:
        pass  # reported below if it is still there


def _alive(pid: int, start: int | None) -> bool:
    """Our process is still there (same pid and start time, not a zombie)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    if start is None or process_start(pid) != start:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _stop_processes(procs: list[dict]) -> None:
    """SIGTERM each recorded process group, wait, then SIGKILL what remains."""
    live = [(p["pid"], p.get("start")) for p in procs if p.get("pid") and _alive(p["pid"], p.get("start"))]
    for pid, _ in live:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline and any(_alive(pid, start) for pid, start in live):
        time.sleep(0.05)
    for pid, start in live:
        if _alive(pid, start):
            _signal(pid, signal.SIGKILL)


def _signal(pid: int, sig: int) -> None:
    """The process's own group (each testbed process leads its session), else the process."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
