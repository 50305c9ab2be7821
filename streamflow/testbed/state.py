"""The testbed's state file: every namespace, link, qdisc, cgroup and process, recorded before it
is made, so `down` can undo a crashed or SIGKILLed `up` from whatever the file holds.

The file is rewritten whole through a temporary file and rename (readers never see half a
file); a resource recorded but never made is simply absent when `down` comes to it. A lock file
keeps two testbed commands from working on one state directory at once; the kernel drops the
lock when its holder dies, so a killed `up` never blocks the `down` that follows.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from streamflow.errors import StreamflowError

DEFAULT_DIR = Path(os.environ.get("STREAMFLOW_TESTBED_STATE", "/run/streamflow-testbed"))
VERSION = 1


class TestbedError(StreamflowError):
    """A testbed command cannot proceed (not root, not up, already up, a system call failed)."""

    __test__ = False  # not a pytest class
    exit_status = 1


def process_start(pid: int) -> int | None:
    """The kernel's start time of `pid` (clock ticks since boot), None if it is gone: with the pid,
    it tells our process from a later one that reuses its number."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text.rsplit(")", 1)[1].split()[19])


class State:
    """The state directory of one testbed: state.json, a lock, and the logs of its processes."""

    def __init__(self, directory: str | Path, doc: dict[str, Any]) -> None:
        self.dir = Path(directory)
        self.doc = doc

    # files ---------------------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self.dir / "state.json"

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"

    @classmethod
    def load(cls, directory: str | Path) -> "State | None":
        path = Path(directory) / "state.json"
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            raise TestbedError(f"{path}: unreadable testbed state ({exc}); remove it after checking "
                               f"`ip netns list` by hand") from None
        return cls(directory, doc)

    @classmethod
    def create(cls, directory: str | Path, **fields: Any) -> "State":
        state = cls(directory, {"version": VERSION, "status": "starting", "created_at": time.time(),
                                "pid": os.getpid(), **fields, "resources": []})
        state.dir.mkdir(parents=True, exist_ok=True)
        state.flush()
        return state

    def flush(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w") as fh:
            json.dump(self.doc, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def remove(self) -> None:
        for p in (self.path, self.path.with_suffix(".tmp")):
            p.unlink(missing_ok=True)

    # contents ------------------------------------------------------------------------------------
    @property
    def status(self) -> str:
        return self.doc.get("status", "unknown")

    @property
    def resources(self) -> list[dict[str, Any]]:
        return self.doc.setdefault("resources", [])

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Note a resource about to be made (and save), so a crash right after still knows it."""
        entry = {"kind": kind, **fields}
        self.resources.append(entry)
        self.flush()
        return entry

    def record_process(self, entry: dict[str, Any], pid: int) -> None:
        entry["pid"] = pid
        entry["start"] = process_start(pid)
        self.flush()

    def update(self, **fields: Any) -> None:
        self.doc.update(fields)
        self.flush()


class Lock:
    """An exclusive, non-blocking lock on a state directory for the length of one command."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / "lock"
        self.fd: int | None = None

    def __enter__(self) -> "Lock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            raise TestbedError(f"another `streamflow testbed` command is working on {self.path.parent}") from None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def running(directory: str | Path = DEFAULT_DIR) -> State:
    """The state of a testbed that is up, or a TestbedError saying why there is none."""
    state = State.load(directory)
    if state is None:
        raise TestbedError(f"no testbed is up (no state in {directory}); start one with "
                           f"`streamflow testbed up INFRA.json`")
    if state.status != "up":
        raise TestbedError(f"the testbed in {directory} is {state.status!r}, not up; "
                           f"run `streamflow testbed down` and bring it up again")
    return state
