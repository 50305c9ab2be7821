"""An emulated multi-host testbed on one machine: the infrastructure file's hosts become network
namespaces under CPU quotas and memory limits, its tiers routers joined by links shaped to the
file's bandwidth and round trip, and every host runs a real `streamflow-worker`.

    streamflow testbed up examples/testbed/infra.json
    streamflow run examples/testbed/plan.json --testbed
    streamflow testbed down

Modules: infra (the file), topology (names, addresses), netns (ip), shaping (tc), delayline
(round-trip delay), cgroups (quotas), state (what was made), up, down, status, probe (measure a
link or a quota), cli. `Testbed` brings one up for a `with` block (tools and tests).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from streamflow.testbed.state import DEFAULT_DIR, State, TestbedError

__all__ = ["Testbed", "TestbedError", "DEFAULT_DIR"]


class Testbed:
    """`with Testbed(infra) as state:` up on entry, down on exit (also on errors and Ctrl-C)."""

    def __init__(self, infra: str | Path, state_dir: str | Path = DEFAULT_DIR, progress: Any = None) -> None:
        self.infra = infra
        self.state_dir = Path(state_dir)
        self.progress = progress
        self.state: State | None = None

    def __enter__(self) -> State:
        from streamflow.testbed.up import bring_up
        self.state = bring_up(self.infra, self.state_dir, progress=self.progress)
        return self.state

    def __exit__(self, *exc: Any) -> None:
        from streamflow.testbed.down import take_down
        left = take_down(self.state_dir)
        if left:
            raise TestbedError(f"could not remove: {'; '.join(left)}")
