"""What `streamflow run --testbed` needs from the testbed: the management address its workers
were started with (the coordinator listens there), after checking the plan fits the testbed.

The run itself is the ordinary coordinator path a multi-host user runs: long-lived workers,
already registered, over TCP with CURVE keys; only the listen address and the key folder come
from the state file.
"""
from __future__ import annotations

from pathlib import Path

from streamflow.plan import Plan
from streamflow.testbed.state import DEFAULT_DIR, TestbedError, running


def coordinator_address(plan: Plan, state_dir: str | Path | None = None) -> str:
    """The testbed's coordinator address; a TestbedError if it is not up or lacks a plan worker."""
    state = running(state_dir or DEFAULT_DIR)
    hosts = state.doc.get("hosts", {})
    for name in plan.workers_used():
        if name not in hosts:
            raise TestbedError(f"{plan.source_path}: worker {name!r} is not a host of the testbed "
                               f"(hosts: {', '.join(hosts)}; infra: {state.doc.get('infra')})")
        if hosts[name]["tier"] != plan.workers[name].tier:
            raise TestbedError(f"{plan.source_path}: worker {name!r} is on tier {plan.workers[name].tier!r} "
                               f"in the plan, {hosts[name]['tier']!r} on the testbed")
    return state.doc["coordinator"]


def testbed_keys(state_dir: str | Path | None = None) -> str:
    """The key folder `testbed up` made for its workers and the coordinator that runs on them."""
    state = running(state_dir or DEFAULT_DIR)
    keys = state.doc.get("keys")
    if not keys:
        raise TestbedError("the testbed that is up has no keys (brought up by an older version): "
                           "streamflow testbed down, then up again")
    return str(keys)
