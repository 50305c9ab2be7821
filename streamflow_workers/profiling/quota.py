"""Profiling on the testbed: time a variant inside a cgroup with a worker type's CPU quota (and
its threads), and measure the links between tiers, so the problem states what a 0.25-core edge
box and a 50 Mbit/s cloud link really deliver rather than what this machine's full cores do.

The timing runs in a fresh process that joins the cgroup before it starts (model load, warm-up
and the timed batches all run under the quota); frames travel to it in a temporary file, never
over a network. Each worker type gets its own cgroup under the testbed's, recorded in the state
file while it exists, so `streamflow testbed down` removes it even if the profiler dies.

    python -m streamflow_workers.profiling.quota JOB.pickle     # prints {batch size: ms per frame}
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from streamflow.errors import PlanError


class QuotaTimer:
    """Cgroups per CPU quota under a testbed that is up; times variants inside them."""

    def __init__(self, state: Any) -> None:
        from streamflow.testbed import cgroups
        self.state = state
        self.backend = cgroups.detect()
        self.groups: dict[float, list[str]] = {}

    def group(self, cpus: float) -> list[str]:
        from streamflow.testbed import cgroups
        from streamflow.testbed.up import CGROUP_ROOT
        if cpus not in self.groups:
            relative = f"{CGROUP_ROOT}/profile-{len(self.groups)}"
            dirs = [str(d) for d in self.backend.dirs(relative)]
            self.state.record("cgroup", dirs=dirs, what=f"profile at {cpus:g} cpus")
            cgroups.create(self.backend, relative, cpus=cpus)
            self.groups[cpus] = dirs
        return self.groups[cpus]

    def time(self, op: dict[str, Any], variant: str, device: str, threads: int, cpus: float,
             records: list[dict[str, Any]], batch_sizes: list[int]) -> dict[int, float]:
        """ms per frame at each batch size, measured under `cpus` cores."""
        from streamflow.cluster.local import worker_env
        from streamflow.testbed import cgroups
        dirs = self.group(cpus)
        with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as fh:
            pickle.dump((op, variant, device, threads, records, batch_sizes), fh)
        try:
            env = dict(worker_env(), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                       OPENBLAS_NUM_THREADS=str(threads))
            out = subprocess.run([sys.executable, "-m", "streamflow_workers.profiling.quota", fh.name], capture_output=True,
                                 text=True, env=env, preexec_fn=lambda: cgroups.join(dirs))
        finally:
            os.unlink(fh.name)
        if out.returncode != 0:
            raise PlanError(f"operators.{op['name']}: variant {variant!r} under {cpus:g} cpus: "
                            f"{(out.stderr.strip().splitlines() or ['failed'])[-1]}")
        return {int(b): ms for b, ms in json.loads(out.stdout.strip().splitlines()[-1]).items()}

    def close(self) -> None:
        from streamflow.testbed import cgroups
        for dirs in self.groups.values():
            if not cgroups.remove(dirs):
                self.state.doc["resources"] = [r for r in self.state.resources if r.get("dirs") != dirs]
        self.state.flush()


@contextmanager
def on_testbed(state_dir: str | None) -> Iterator[tuple[Any, QuotaTimer]]:
    """The state of the testbed that is up and a QuotaTimer, holding the state lock meanwhile."""
    from streamflow.testbed.state import DEFAULT_DIR, Lock, running
    from streamflow.testbed.up import require_root
    require_root()
    directory = state_dir or DEFAULT_DIR
    with Lock(directory):
        state = running(directory)
        timer = QuotaTimer(state)
        try:
            yield state, timer
        finally:
            timer.close()


def measure_links(state: Any, infra: Any, seconds: float = 2.0) -> dict[str, dict[str, float]]:
    """{"edge->cloud": {"mbps", "rtt_ms"}} for both directions of every tier pair, host to host."""
    from streamflow.testbed.probe import measure_link
    hosts = state.doc["hosts"]
    first = {}
    for name, h in hosts.items():
        first.setdefault(h["tier"], name)
    out = {}
    for lo, hi in infra.pairs():
        if lo not in first or hi not in first:
            continue
        for a, b in ((lo, hi), (hi, lo)):
            m = measure_link(state, first[a], first[b], seconds)
            out[f"{a}->{b}"] = {"mbps": m["mbps"], "rtt_ms": m["rtt_ms"], "configured_mbps":
                                infra.link(a, b).bandwidth_mbps, "configured_rtt_ms": infra.link(a, b).rtt_ms}
    return out


def main(argv: list[str]) -> int:
    op, variant, device, threads, records, batch_sizes = pickle.loads(Path(argv[0]).read_bytes())
    from streamflow_workers.profiling.measure import time_variant
    ms = time_variant(op, variant, device, threads, records, batch_sizes)
    print(json.dumps({str(b): v for b, v in ms.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
