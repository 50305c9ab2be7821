"""CPU quotas and memory limits per host: cgroup v1 (cpu.cfs_quota_us, memory.limit_in_bytes)
or v2 (cpu.max, memory.max), whichever this machine mounts with a CPU controller.

The quota is a ceiling; on a machine busy with other work a host could still get less than its
`cpus`. The testbed's parent group therefore gets ten times the default CPU weight (v1
cpu.shares 10240, v2 cpu.weight 1000): under contention its hosts are served first, up to
their quotas, so a run measures the emulated hosts rather than whatever else runs here.

A group is a list of directories, one per hierarchy that holds a controller (v1: cpu and
memory; v2: one unified directory). A process joins by writing its own pid into each
`cgroup.procs` between fork and exec (see `join`), so it never runs a line of work outside its
quota, and everything it starts stays inside. That also makes a group the reliable list of
what to stop: `remove` kills whatever is still in it, including processes whose pid a crashed
`up` never got to record.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from streamflow.testbed.state import TestbedError

PERIOD_US = 100_000
ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Backend:
    """Where quotas live on this machine."""

    version: int
    cpu: Path                  # v1: the cpu hierarchy; v2: the unified hierarchy
    memory: Path | None        # v1: the memory hierarchy (None: no memory controller); v2: = cpu

    def dirs(self, relative: str) -> list[Path]:
        roots = [self.cpu] if self.version == 2 or self.memory is None else [self.cpu, self.memory]
        return [r / relative for r in roots]


def detect(root: Path = ROOT) -> Backend:
    """The cgroup layout of this machine; a TestbedError when no CPU quota can be set."""
    if (root / "cpu" / "cpu.cfs_quota_us").exists():
        memory = root / "memory"
        return Backend(1, root / "cpu", memory if (memory / "memory.limit_in_bytes").exists() else None)
    for unified in (root, root / "unified"):
        controllers = unified / "cgroup.controllers"
        if controllers.exists() and "cpu" in controllers.read_text().split():
            return Backend(2, unified, unified if "memory" in controllers.read_text().split() else None)
    raise TestbedError(f"no cgroup hierarchy with CPU quotas under {root} (need cgroup v1 'cpu' with "
                       f"cpu.cfs_quota_us, or cgroup v2 with the cpu controller)")


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise TestbedError(f"cannot write {value!r} to {path}: {exc.strerror or exc}") from None


def create(backend: Backend, relative: str, cpus: float | None = None, memory_mb: int | None = None,
           weight: int | None = None) -> list[Path]:
    """Make the group (its parent must exist) and set its limits; `weight` is a v2-style CPU weight
    (default 100); returns its directories."""
    dirs = backend.dirs(relative)
    for d in dirs:
        if backend.version == 2:
            _enable_controllers(backend, d.parent)
        try:
            d.mkdir()
        except FileExistsError:
            raise TestbedError(f"cgroup {d} exists: another testbed is up, or one was not taken down "
                               f"(streamflow testbed down)") from None
        except OSError as exc:
            raise TestbedError(f"cannot create cgroup {d}: {exc.strerror or exc}") from None
    cpu_dir = dirs[0]
    if cpus is not None:
        quota = max(1000, round(cpus * PERIOD_US))
        if backend.version == 1:
            _write(cpu_dir / "cpu.cfs_period_us", str(PERIOD_US))
            _write(cpu_dir / "cpu.cfs_quota_us", str(quota))
        else:
            _write(cpu_dir / "cpu.max", f"{quota} {PERIOD_US}")
    if weight is not None:
        if backend.version == 1:
            _write(cpu_dir / "cpu.shares", str(weight * 1024 // 100))
        else:
            _write(cpu_dir / "cpu.weight", str(weight))
    if memory_mb is not None and backend.memory is not None:
        limit = str(memory_mb << 20)
        if backend.version == 1:
            _write(dirs[1] / "memory.limit_in_bytes", limit)
        else:
            _write(cpu_dir / "memory.max", limit)
    return dirs


def _enable_controllers(backend: Backend, parent: Path) -> None:
    """v2 hands a controller to children only when the parent's subtree_control lists it."""
    wanted = ["cpu"] + (["memory"] if backend.memory is not None else [])
    control = parent / "cgroup.subtree_control"
    have = control.read_text().split() if control.exists() else []
    missing = [c for c in wanted if c not in have]
    if missing:
        _write(control, " ".join(f"+{c}" for c in missing))


def join(dirs: list[str] | list[Path]) -> None:
    """Move the calling process into the group (call it between fork and exec: preexec_fn)."""
    pid = str(os.getpid())
    for d in dirs:
        with open(Path(d) / "cgroup.procs", "w") as fh:
            fh.write(pid)


def members(dirs: list[str] | list[Path]) -> set[int]:
    """Pids in the group (any of its directories), empty if it is gone."""
    out: set[int] = set()
    for d in dirs:
        try:
            out |= {int(x) for x in (Path(d) / "cgroup.procs").read_text().split()}
        except OSError:
            continue
    return out


def remove(dirs: list[str] | list[Path], grace_s: float = 5.0) -> list[str]:
    """Kill what is left in the group, then remove its directories; returns what could not go."""
    deadline = time.monotonic() + grace_s
    while (pids := members(dirs)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    left = []
    for d in dirs:
        path = Path(d)
        if not path.exists():
            continue
        for _ in range(50):  # the kernel may take a moment to let go of dead tasks
            try:
                path.rmdir()
                break
            except OSError:
                time.sleep(0.1)
        else:
            left.append(str(path))
    return left
